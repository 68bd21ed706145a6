"""Real processes for the ops tests: the HTTP stand-in (`unogas-bot standin serve`) and `unogas-bot run`,
as an operator starts them, driven over loopback HTTP only. Every wait has a deadline.

The process driver itself (StandIn, Bot, standin, run_bot, wait_for, the scratch database) lives in
unogas_bot/bench/failover.py, which the benchmark's failover phase uses too; the tests' own helpers are here.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL
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
