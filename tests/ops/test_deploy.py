"""The deployment files (deploy/): the systemd unit passes `systemd-analyze verify` where that program
exists, has what docs/operations.md promises (EnvironmentFile=, Restart=, SIGTERM as the graceful stop,
hardening), and the sample environment file lists every variable the bot reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "unogas-bot.service"
SAMPLE = ROOT / "deploy" / "unogas-bot.env.example"
INSTALLED_AT = "/opt/unogas-bot"


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    program = shutil.which("systemd-analyze")
    if program is None:
        pytest.skip("systemd-analyze is not installed here (it comes with systemd)")
    venv_program = ROOT / ".venv" / "bin" / "unogas-bot"
    if not venv_program.exists():
        pytest.skip(f"{venv_program} does not exist: verify checks that ExecStart's program is there")
    # The unit names the installed location; verify checks that ExecStart exists, so point it at this tree.
    unit = tmp_path / "unogas-bot.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_AT, str(ROOT)))
    done = subprocess.run(
        [program, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    # verify exits 0 on a directive it ignores, but says so: no output at all is the pass.
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "unogas-bot.service" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


def test_the_unit_restarts_stops_gracefully_and_is_hardened() -> None:
    unit = _directives(UNIT.read_text())
    assert unit["EnvironmentFile"] == ["/etc/unogas-bot/unogas-bot.env"]
    assert unit["ExecStart"] == [f"{INSTALLED_AT}/.venv/bin/unogas-bot run"]
    assert unit["Restart"] == ["always"], "a fenced leader exits to come back as a standby"
    assert unit["StartLimitIntervalSec"] == ["0"]
    assert unit["KillSignal"] == ["SIGTERM"]
    # Far above the webhook's connection cap and the pools: a flood never starves the bot's own descriptors.
    from unogas_bot.bot.webhook import MAX_CONNECTIONS

    assert int(unit["LimitNOFILE"][0]) >= 16 * MAX_CONNECTIONS
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DynamicUser": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit.get(key) == [value], key


def test_the_sample_environment_lists_every_variable_the_bot_reads() -> None:
    source = (ROOT / "unogas_bot" / "config.py").read_text()
    read = set(re.findall(r'env\.get\("([A-Z_]+)"', source)) | set(
        re.findall(r'_int\(env, "([A-Z_]+)"', source)
    )
    assert {"TELEGRAM_BOT_TOKEN", "DATABASE_URL", "METRICS_PORT", "LOG_FORMAT"} <= read
    listed = set(re.findall(r"^#?([A-Z][A-Z_]+)=", SAMPLE.read_text(), re.MULTILINE))
    assert read <= listed, f"add to {SAMPLE.name}: {sorted(read - listed)}"
    page = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in page)
    assert not missing, f"and docs/operations.md's Configuration table: {missing}"
