"""Real processes for the ops tests: the HTTP stand-in (`unogas-bot standin serve`) and `unogas-bot run`,
as an operator starts them, driven over loopback HTTP only. Every wait has a deadline.

The process driver itself (StandIn, Bot, standin, run_bot, wait_for, the scratch database) lives in
unogas_bot/bench/failover.py, which the benchmark's failover phase uses too; the tests' own helpers are here.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.kit.tcpproxy import TcpProxy
from unogas_bot.bench.failover import (
    Bot,
    StandIn,
    asyncpg_dsn,
    create_database,
    drop_database,
    free_port,
    new_token,
    run_bot,
    standin,
    wait_for,
)
from unogas_bot.bench.failover import child_env as _env

__all__ = ["Bot", "StandIn", "_env", "free_port", "new_token", "run_bot", "standin", "wait_for"]

# Demo customer (storage/demo.py) and what a registration types.
MARIO = {"code": "UG-100234", "first": "Mario", "last": "Rossi", "tax": "RSSMRA75C12H501H"}
EMAIL = "mario.rossi@example.it"
PASSWORD = "Lanterna verde 1987"
QUESTION = "Come si chiamava il mio primo gatto?"
ANSWER = "Briciola Bianca"
SAVED = "Le informazioni relative al proprio profilo sono state correttamente salvate."
SECRETS = (PASSWORD, ANSWER, EMAIL, MARIO["tax"])


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


def query(database_url: str, sql: str) -> Any:
    """One value from the database `database_url` names."""
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=5)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on TEST_POSTGRES_URL's server (skipped when it does not answer)."""
    try:
        url = create_database(POSTGRES_URL, "ops")
    except Exception as exc:  # not reachable here: skipped with the reason
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}")
    try:
        yield url
    finally:
        drop_database(POSTGRES_URL, url)


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def logged_at(bot: Bot, text: str) -> str | None:
    """The timestamp of the first log line of `bot` containing `text` (text format)."""
    for line in bot.log():
        if text in line:
            match = LOG_TIME.match(line)
            return match.group(1) if match else None
    return None


# --- a database path that can be black-holed --------------------------------------------------------------


class ProxyThread:
    """tests/kit/tcpproxy.py's proxy, on an event loop of its own (the process tests are synchronous)."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = TcpProxy(host, port)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.__aenter__(), self.loop).result(5)
        return self

    def blackhole(self) -> None:
        self.loop.call_soon_threadsafe(self.proxy.blackhole)

    def forward(self) -> None:
        self.loop.call_soon_threadsafe(self.proxy.forward)

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.proxy.__aexit__(None, None, None), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextmanager
def proxied(url: str) -> Iterator[tuple[str, ProxyThread]]:
    """`url` through a proxy of its own: (the proxied URL, the proxy)."""
    parsed = make_url(url)
    with ProxyThread(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
        yield parsed.set(host="127.0.0.1", port=proxy.proxy.port).render_as_string(hide_password=False), proxy
