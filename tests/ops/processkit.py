"""Real processes for the ops tests: the HTTP stand-in (`unogas-bot standin serve`) and `unogas-bot run`,
as an operator starts them, driven over loopback HTTP only. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import POSTGRES_URL

T = TypeVar("T")

# Demo customer (storage/demo.py) and what a registration types.
MARIO = {"code": "UG-100234", "first": "Mario", "last": "Rossi", "tax": "RSSMRA75C12H501H"}
EMAIL = "mario.rossi@example.it"
PASSWORD = "Lanterna verde 1987"
QUESTION = "Come si chiamava il mio primo gatto?"
ANSWER = "Briciola Bianca"
SAVED = "Le informazioni relative al proprio profilo sono state correttamente salvate."
SECRETS = (PASSWORD, ANSWER, EMAIL, MARIO["tax"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], T | None], seconds: float, every: float = 0.05) -> T:
    """`check()` until it returns something other than None/False, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(every)


def new_token() -> str:
    """A token of a bot of its own (its id keys the leadership), so tests never share a lock."""
    return f"{7_000_000 + secrets.randbelow(1_000_000)}:TEST-{secrets.token_hex(16)}"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "LOG_", "TELEGRAM_"))}
    return {**env, "BCRYPT_ROUNDS": "4", **extra}


@dataclass
class StandIn:
    """The running `unogas-bot standin serve` and the users it plays."""

    process: subprocess.Popen[str]
    api_url: str  # TELEGRAM_API_BASE_URL
    root: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def send(self, user_id: int, text: str) -> None:
        answer = self.client.post(f"{self.root}/standin/users/{user_id}/send", json={"text": text})
        assert answer.status_code == 200, answer.text

    def press(self, user_id: int, label: str) -> None:
        answer = self.client.post(f"{self.root}/standin/users/{user_id}/press", json={"button": label})
        assert answer.status_code == 200, answer.text

    def replies(self, user_id: int, after: int = 0, wait: float = 0) -> list[dict[str, Any]]:
        url = f"{self.root}/standin/users/{user_id}/replies"
        answer = self.client.get(url, params={"after": after, "wait": wait}, timeout=wait + 10)
        return list(answer.json()["replies"])

    def status(self) -> dict[str, Any]:
        return dict(self.client.get(f"{self.root}/standin/status").json())

    def say(self, user_id: int, text: str, *, press: bool = False, wait: float = 10) -> str:
        """Send (or press) and return the text of the bot's first new message, waiting up to `wait` s;
        later messages of the same reply are given a moment to arrive, and the last one is returned."""
        before = len(self.replies(user_id))
        (self.press if press else self.send)(user_id, text)
        new = self.replies(user_id, before, wait)
        assert new, f"no reply to {text!r} within {wait} s"
        time.sleep(0.15)  # a step may answer with two messages
        return str(self.replies(user_id, before)[-1]["text"])


@contextmanager
def standin(token: str) -> Iterator[StandIn]:
    """`unogas-bot standin serve --port 0` for `token`; its first line names the URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "standin", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env({"TELEGRAM_BOT_TOKEN": token}),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("TELEGRAM_API_BASE_URL=http://127.0.0.1:"), line
        api_url = line.partition("=")[2]
        stand_in = StandIn(process, api_url, api_url.removesuffix("/bot"))
        yield stand_in
        stand_in.client.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@dataclass
class Bot:
    """A running `unogas-bot run`, its log (a file, read as it grows) and its health port."""

    process: subprocess.Popen[str]
    log_path: Path
    metrics_port: int
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def log(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.log())

    def get(self, path: str) -> httpx.Response | None:
        try:
            return self.client.get(f"http://127.0.0.1:{self.metrics_port}{path}")
        except httpx.TransportError:
            return None

    def ready(self) -> dict[str, Any] | None:
        answer = self.get("/readyz")
        return None if answer is None else {"status": answer.status_code, **answer.json()}

    def wait_role(self, role: str, seconds: float = 30) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            self.check_alive()
            state = self.ready()
            return state if state is not None and state["role"] == role else None

        return wait_for(f"the bot's role to be {role}", check, seconds)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"the bot ended with {self.process.returncode}:\n" + "\n".join(self.log()))

    def metric(self, name: str) -> float:
        answer = self.get("/metrics")
        assert answer is not None and answer.status_code == 200
        for line in answer.text.splitlines():
            if line.split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} not in /metrics")

    def stop(self, seconds: float = 20) -> int:
        """SIGTERM, and the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=seconds)


@contextmanager
def run_bot(
    tmp_path: Path, name: str, token: str, stand_in: StandIn, database_url: str, **env: str
) -> Iterator[Bot]:
    """`unogas-bot run` against the stand-in, with its health port; killed at the end if still running."""
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    log_file = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "run"],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        text=True,
        env=_env(
            {
                "TELEGRAM_BOT_TOKEN": token,
                "TELEGRAM_API_BASE_URL": stand_in.api_url,
                "DATABASE_URL": database_url,
                "METRICS_PORT": str(port),
                **env,
            }
        ),
    )
    bot = Bot(process, log_path, port)
    try:
        yield bot
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log_file.close()
        bot.client.close()


def load_demo_customers(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "unogas_bot", "customers", "demo"],
        env=_env({"DATABASE_URL": database_url}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# --- PostgreSQL: a fresh database per test (advisory locks and schemas are per database) -------------------


def _admin_dsn() -> str:
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(statement: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(_admin_dsn(), timeout=3)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


def query(database_url: str, sql: str) -> Any:
    """One value from the database `database_url` names."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def go() -> Any:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on TEST_POSTGRES_URL's server (skipped when it does not answer)."""
    name = f"ops_{secrets.token_hex(5)}"
    try:
        _admin(f"CREATE DATABASE {name}")
    except Exception as exc:  # not reachable here: skipped with the reason
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}")
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def logged_at(bot: Bot, text: str) -> str | None:
    """The timestamp of the first log line of `bot` containing `text` (text format)."""
    for line in bot.log():
        if text in line:
            match = LOG_TIME.match(line)
            return match.group(1) if match else None
    return None
