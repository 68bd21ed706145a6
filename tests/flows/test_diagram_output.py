"""`flows diagram -o FILE` writes what the file's name says (issue 22, item 3: found by the attacks on
`flows diagram`): `-o registration.png` wrote Mermaid text into a .png file, silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from unogas_bot.cli.main import main
from unogas_bot.flows.diagram import dot, mermaid, specs


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
