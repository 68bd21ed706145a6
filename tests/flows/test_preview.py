"""`flows preview` (issue 22, item 4): one static page with every message of every form, both languages,
as Telegram bubbles with their buttons; and a real browser draws it (headless Chromium, where installed)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from unogas_bot.cli.main import main as cli_main
from unogas_bot.flows.diagram import specs
from unogas_bot.flows.preview import INLINE, PARTS, page
from unogas_bot.flows.samples import plain
from unogas_bot.i18n import texts

CHROMIUM = "/usr/bin/chromium"


def _keys(html: str) -> set[str]:
    return set(re.findall(r'data-key="([^"]+)"', html))


def test_every_message_of_the_catalogue_is_on_the_page() -> None:
    html = page()
    shown = _keys(html)
    catalogue = texts.load()["it"]
    missing = [k for k in catalogue if k not in shown and k not in PARTS and not k.startswith(INLINE)]
    assert not missing, missing
    for spec in specs().values():
        for step in spec.steps:
            assert spec.question_key(step, {"kind": "person"}) in shown, (spec.name, step.key)
            assert spec.help_key(step, {"kind": "person"}) in shown, (spec.name, step.key)
    # Both languages, with their buttons; placeholders filled with sample values, escaped.
    assert plain(texts.t("it", "q_customer_code")).split("\n")[0] in plain(html)
    assert plain(texts.t("en", "q_customer_code")).split("\n")[0] in plain(html)
    assert (
        "<span>Persona</span><span>Azienda</span>" in html
        and "<span>Person</span><span>Business</span>" in html
    )
    assert "<span>Salva</span>" in html and "Modifica: Codice cliente" in html
    body = html.split("</style>", 1)[1]
    assert "{" not in plain(body), "a placeholder left unfilled"


def test_every_error_of_a_question_follows_it() -> None:
    html = page(["registration"], ("it",))
    keys = re.findall(r'data-key="([^"]+)"', html)
    email = keys.index("q_email")
    assert {"e_email.no_at", "e_email.empty"} <= set(keys[email : email + 12])
    assert keys.index("e_password.common") > keys.index("q_password")
    assert "password_mismatch" in keys and "verify_locked" in keys and "saved" in keys
    assert '<div class="lang">en</div>' not in html  # one language asked for


def test_the_command_writes_one_form_in_one_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "login.html"
    assert cli_main(["flows", "preview", "login", "--language", "en", "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'id="login"' in html and 'id="registration"' not in html and "login_wait" in _keys(html)
    assert "Too many failed login attempts" in html
    assert cli_main(["flows", "preview", "nessuno"]) == 1
    assert "no form 'nessuno'" in capsys.readouterr().err


def _distinct_pixels(png: bytes) -> int:
    """How many different byte values the image's pixel rows hold (a blank page has a handful)."""
    assert png.startswith(b"\x89PNG")
    pos, data = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(data)))


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="no Chromium here (/usr/bin/chromium: scripts/_env.sh installs it where it runs as root)",
)
def test_a_real_browser_draws_the_page(tmp_path: Path) -> None:
    preview = tmp_path / "preview.html"
    preview.write_text(page(), encoding="utf-8")
    shot = tmp_path / "preview.png"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        run = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                "--window-size=1280,1800",
                f"--screenshot={shot}",
                preview.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    png = shot.read_bytes()
    assert struct.unpack(">II", png[16:24]) == (1280, 1800)
    assert _distinct_pixels(png) > 100  # text, bubbles and buttons, not a blank page
    if os.environ.get("UNOGAS_ARTEFACTS"):  # keep the screenshot for a person to look at
        shutil.copy(shot, Path(os.environ["UNOGAS_ARTEFACTS"]) / "preview-test.png")
