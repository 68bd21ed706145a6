"""The support CLI's set-up: `--version`, `console --fresh` and `--language`, one default database."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unogas_bot.cli import main as cli


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"unogas-bot {importlib.metadata.version('unogas-bot')}\n"


def _cli(args: list[str], db: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}", "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "unogas_bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


PENDING = "Il contratto è intestato a una persona o a un'azienda?"


def test_console_fresh_forgets_the_saved_state_of_an_earlier_session(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    assert _cli(["customers", "demo"], db).returncode == 0
    started = _cli(["console"], db, stdin="/registrati\n1\nUG-100234\n")
    assert started.returncode == 0 and PENDING in started.stdout
    other = _cli(["console", "--user-id", "4242"], db, stdin="/registrati\n1\nUG-100235\n")
    assert PENDING in other.stdout

    resumed = _cli(["console"], db)
    assert resumed.returncode == 0 and PENDING in resumed.stdout  # without --fresh: where it stopped
    fresh = _cli(["console", "--fresh"], db)
    assert fresh.returncode == 0, fresh.stderr
    assert PENDING not in fresh.stdout and "Le diamo il benvenuto" in fresh.stdout
    assert PENDING not in _cli(["console"], db).stdout  # forgotten, not just hidden for one session
    assert PENDING in _cli(["console", "--user-id", "4242"], db).stdout  # nobody else's state is touched


@pytest.mark.parametrize("language", ["fr", "xx-YY", ""])
def test_console_refuses_an_unknown_language_in_one_line(
    language: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["console", "--language", language]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"unogas-bot: unknown language {language!r}: the bot speaks it, en\n"


def test_console_takes_a_regional_language_code(tmp_path: Path) -> None:
    run = _cli(["console", "--language", "en-GB", "--fresh"], tmp_path / "en.db")
    assert run.returncode == 0, run.stderr
    assert "/register" in run.stdout or "Welcome" in run.stdout
