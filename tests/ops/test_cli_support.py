"""The support CLI's set-up: `--version`, `console --fresh` and `--language`, one default database."""

from __future__ import annotations

import importlib.metadata

import pytest

from unogas_bot.cli import main as cli


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"unogas-bot {importlib.metadata.version('unogas-bot')}\n"
