"""`flows diagram -o FILE` writes what the file's name says (issue 22, item 3: found by the attacks on
`flows diagram`): `-o registration.png` wrote Mermaid text into a .png file, silently. And the SVG and PNG
drawings, made by Graphviz's `dot` program (a process each: out of the unit tier, which stays fast)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from unogas_bot.cli.main import main
from unogas_bot.flows.diagram import dot, mermaid, render, specs

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed here (scripts/_env.sh installs it where it can)",
)


@pytest.mark.parametrize("suffix", [".png", ".svg", ".dot", ".gv", ".mmd", ".md"])
def test_the_format_follows_the_files_name_unless_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    if suffix in (".png", ".svg") and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    out = tmp_path / f"login{suffix}"
    assert main(["flows", "diagram", "login", "-o", str(out)]) == 0, capsys.readouterr().err
    data = out.read_bytes()
    expected = {
        ".png": lambda: data.startswith(b"\x89PNG"),
        ".svg": lambda: b"<svg" in data[:500],
        ".dot": lambda: data.decode() == dot(specs()["login"], "it"),
        ".gv": lambda: data.decode() == dot(specs()["login"], "it"),
        ".mmd": lambda: data.decode() == mermaid(specs()["login"], "it"),
        ".md": lambda: data.decode() == mermaid(specs()["login"], "it"),
    }
    assert expected[suffix](), data[:80]


def test_a_format_given_that_the_files_name_contradicts_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "login.png"
    assert main(["flows", "diagram", "login", "--format", "mermaid", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == f"unogas-bot: {out} is named as a png file but --format is mermaid: rename it or drop --format\n"
    )
    assert not out.exists()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_dot
def test_svg_and_png_are_drawn_by_graphviz_and_stay_compact() -> None:
    svg = render(specs()["registration"], "it", "svg")
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"codice cliente" in svg
    width, height = _png_size(render(specs()["registration"], "it", "png"))
    assert width < 2000 and height < 2600, (width, height)
    for name in ("login", "export", "change_phone"):
        width, _ = _png_size(render(specs()[name], "en", "png"))
        assert width < 1400, (name, width)  # no detached node beside a small flow


def test_png_refuses_a_terminal_and_goes_to_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from unogas_bot.cli.main import main

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["flows", "diagram", "login", "--format", "png"]) == 1
    assert "a PNG is binary and this is a terminal: give -o FILE.png" in capsys.readouterr().err
    out = tmp_path / "login.mmd"
    assert main(["flows", "diagram", "login", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == mermaid(specs()["login"], "it")
    assert f"wrote {out} (mermaid," in capsys.readouterr().err
    if shutil.which("dot") is not None:
        png = tmp_path / "login.png"
        assert main(["flows", "diagram", "login", "--format", "png", "-o", str(png)]) == 0
        assert png.read_bytes().startswith(b"\x89PNG")
