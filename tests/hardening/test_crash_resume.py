"""A bot killed with SIGKILL in the middle of a registration: a new process resumes it.

Real `unogas-bot console` processes, fed through a pipe; the first is killed (no shutdown, no last flush)
once its state is in the database, the second finishes the registration. On a temporary SQLite file and on
a PostgreSQL database of its own.
"""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage.db import Database
from storage.demo import load_demo
from storage.models import BotConversation
from storage.registry import CustomerRegistry
from tests.conftest import BACKENDS, POSTGRES_URL, _asyncpg_dsn, _check_postgres
from tests.kit.botkit import SEED_SENTENCE as SAVED
from tests.kit.stores import KitAccounts
from unogas_bot.cli.console import SECRET_ECHO

FIRST_HALF = [
    "/registrati",
    "1",  # the privacy notice's Continua
    "UG-100234",
    "1",  # Persona
    "Mario",
    "Rossi",
    "RSSMRA75C12H501H",
    "salta",
    "mario.rossi@example.it",
]
SECOND_HALF = [
    "Lanterna verde 1987",
    "Lanterna verde 1987",
    "Come si chiamava il mio primo gatto?",
    "Briciola",
    "briciola",
    "salva",
]
PASSWORD_QUESTION = "Scelga una password"
BUSY = "Prima concluda l'operazione in corso"
TIMEOUT = 60  # seconds for anything a process has to do (loaded CI machines are slow to start Python)


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database that separate processes can open: a SQLite file, or a fresh PostgreSQL
    database (a schema would need a search_path, which a plain URL cannot carry)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
        return
    await _check_postgres()
    import asyncpg

    name = f"unogas_crash_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _env(url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": url, "BCRYPT_ROUNDS": "4"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return env


class Console:
    """A `unogas-bot console` process: lines in through its stdin, its output read as it comes."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "unogas_bot", "console"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(url),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, lines: Iterable[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines))
        self.proc.stdin.flush()

    def expect(self, text: str) -> None:
        """Read the output until a line contains `text` (fails after TIMEOUT seconds or at the end)."""
        deadline = time.monotonic() + TIMEOUT
        while not any(text in line for line in self.seen[-1:]):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} in time; output so far:\n{''.join(self.seen)}")
            if line is None:
                pytest.fail(f"the console ended without {text!r}:\n{''.join(self.seen)}{self.stderr()}")
            self.seen.append(line)

    def finish(self) -> str:
        """Close stdin, wait for the process to end; everything it printed."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=TIMEOUT)
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            self.seen.append(line)
        return "".join(self.seen)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)
        assert self.proc.returncode == -signal.SIGKILL

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""


async def _saved_state(url: str) -> str | None:
    db = Database(url)
    try:
        async with db.session() as session:
            query = sa.select(BotConversation.state).where(BotConversation.name == "registration")
            return (await session.execute(query)).scalar_one_or_none()
    finally:
        await db.dispose()


async def _load_demo(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
        await load_demo(CustomerRegistry(db))
    finally:
        await db.dispose()


async def _accounts(url: str) -> list[str]:
    db = Database(url)
    try:
        repository = KitAccounts(db)
        return [account.email for account in await repository.list_accounts(1)]
    finally:
        await db.dispose()


async def test_a_killed_console_is_resumed_by_a_new_process(database_url: str) -> None:
    await _load_demo(database_url)  # in this process: starting Python costs seconds on a busy machine
    first = Console(database_url)
    try:
        first.send(FIRST_HALF)
        first.expect(PASSWORD_QUESTION)
        # The state is written within a fraction of a second of the answer (not only at shutdown).
        for _ in range(100):
            if await _saved_state(database_url) == '"password"':
                break
            await asyncio.sleep(0.05)
        assert await _saved_state(database_url) == '"password"'
    finally:
        first.kill()

    second = Console(database_url)
    second.send(SECOND_HALF)
    out = second.finish()
    assert second.proc.returncode == 0, second.stderr()
    assert "Traceback" not in second.stderr()
    # The console's own "/start" meets the registration in progress: told so, asked the same question.
    assert "Lanterna verde 1987" not in out, "a piped password is echoed masked"
    resumed = out[: out.index(f"> {SECRET_ECHO}")]
    assert BUSY in resumed and PASSWORD_QUESTION in resumed
    assert "codice cliente" not in out, "nothing is asked twice"
    assert SAVED in out

    assert await _accounts(database_url) == ["mario.rossi@example.it"]
    assert await _saved_state(database_url) is None, "the finished conversation left no state"
