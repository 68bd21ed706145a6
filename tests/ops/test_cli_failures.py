"""Command-line failures an operator meets end in one clear line on stderr, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from unogas_bot.bench import benchmark as bench
from unogas_bot.cli import main as cli
from unogas_bot.config import ConfigError, Settings

NOBODY_LISTENS = "127.0.0.1:1"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("unogas-bot: "), err
    return err


def test_console_with_postgresql_refusing_connections_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://postgres@{NOBODY_LISTENS}/unogas")
    assert cli.main(["console"]) == 1
    assert "cannot reach the database" in _one_line(capsys)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://unogas:pw@db.example:5432/unogas", "postgresql+asyncpg://unogas:pw@db.example:5432/unogas"),
        ("postgresql://unogas@db.example/unogas?sslmode=require", "postgresql+asyncpg://unogas@db.example/unogas?ssl=require"),
        ("postgresql+psycopg2://unogas@db.example/unogas", "postgresql+asyncpg://unogas@db.example/unogas"),
        ("sqlite:///data/unogas.db", "sqlite+aiosqlite:///data/unogas.db"),
        ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("postgresql+asyncpg://u:p%40ss@h/db", "postgresql+asyncpg://u:p%40ss@h/db"),
    ],
)  # fmt: skip
def test_hosting_providers_database_urls_use_the_async_driver(given: str, used: str) -> None:
    assert Settings.from_env({"DATABASE_URL": given}).database_url == used


@pytest.mark.parametrize("url", ["mysql://unogas:hunter2@db/unogas", "postgres://unogas:hunter2@db:port/x"])
def test_a_database_url_the_bot_cannot_use_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DATABASE_URL": url})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgres_url_reaches_the_server_through_asyncpg(
    scheme: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback about a missing dialect or driver: the connection is tried, and refused, by asyncpg."""
    monkeypatch.setenv("DATABASE_URL", f"{scheme}://postgres@{NOBODY_LISTENS}/unogas")
    assert cli.main(["db", "upgrade"]) == 1
    assert "cannot reach the database" in _one_line(capsys)


def test_a_plain_sqlite_url_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'plain.db'}")
    assert cli.main(["db", "upgrade"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_the_bench_database_option_is_mapped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(bench, "main", lambda *args, **kwargs: seen.append(args) or 0)
    assert cli.main(["bench", "--quick", "--database", "postgres://postgres@db.example/test"]) == 0
    assert seen[0][1] == "postgresql+asyncpg://postgres@db.example/test"


def test_importing_a_directory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'import.db'}")
    assert cli.main(["customers", "import", str(tmp_path)]) == 1
    assert "is a directory" in _one_line(capsys)
    too_long = str(tmp_path / ("x" * 300))  # longer than a file name may be
    assert cli.main(["customers", "import", too_long]) == 1
    assert "cannot read" in _one_line(capsys)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`unogas-bot accounts list | head -1`: the reader is gone before the listing is written."""
    reader, writer = os.pipe()
    os.close(reader)
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'pipe.db'}"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "unogas_bot", "accounts", "list"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 128 + signal.SIGPIPE
