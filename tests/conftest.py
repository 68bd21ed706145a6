"""Shared pytest fixtures. Keep each helper's fixtures in their own clearly marked section."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# scripts/test.sh installs the project into .venv; a bare `pytest` from another environment still finds
# `storage`, `unogas_bot` and `conversations` through this (pythonpath = ["."] would do the same).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from storage.db import Database  # noqa: E402
from storage.registry import CustomerRegistry  # noqa: E402
from tests.kit.stores import AttemptLog, KitAccounts  # noqa: E402

# =========================================================================================================
# Storage fixtures
#
#   database        an upgraded, empty Database; parametrized: [sqlite] (a temp file) and [postgres]
#                   (a fresh schema in TEST_POSTGRES_URL, dropped afterwards; skipped if unreachable)
#   empty_database  the same without the schema (for migration tests)
#   clock           a FakeClock (call it for "now"; .advance(...) moves time); repositories below use it
#   registry, accounts, attempt_log   CustomerRegistry / KitAccounts / AttemptLog on database + clock
#
# Run only one backend with `-m "not postgres"` or `-k sqlite`.
# =========================================================================================================

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

# Reachability of POSTGRES_URL, checked once per test session: None = fine, else the error text.
_postgres_problem: list[str | None] = []


class FakeClock:
    """A controllable clock: ``clock()`` is "now" (timezone-aware UTC), ``advance()`` moves it."""

    def __init__(self, start: datetime = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """``clock.advance(timedelta(minutes=5))`` or ``clock.advance(minutes=5)``; returns the new now."""
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now


def _asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _check_postgres() -> None:
    """Skip the test when PostgreSQL is not reachable (tried once per session, 2 s timeout)."""
    import asyncpg

    if not _postgres_problem:
        try:
            conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=2)
        except Exception as exc:  # any failure means "not available here"
            _postgres_problem.append(f"{type(exc).__name__}: {exc}")
        else:
            await conn.close()
            _postgres_problem.append(None)
    if _postgres_problem[0] is not None:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {_postgres_problem[0]}")


@asynccontextmanager
async def make_test_database(
    backend: str, tmp_path: Path, *, upgrade: bool = True, pool_timeout: float | None = None
) -> AsyncIterator[Database]:
    """A throw-away Database of the given backend ("sqlite" or "postgres"); usable outside fixtures too.
    `pool_timeout` replaces the production bound on the wait for a pooled connection or the write turn."""
    waits = {} if pool_timeout is None else {"pool_timeout": pool_timeout}
    if backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db", **waits)
        try:
            if upgrade:
                await db.upgrade()
            yield db
        finally:
            await db.dispose()
        return

    await _check_postgres()
    import asyncpg

    schema = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        db = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}, **waits)
        try:
            if upgrade:
                await db.upgrade()
            yield db
        finally:
            try:
                await db.dispose()
            finally:
                await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with make_test_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture(params=BACKENDS)
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with make_test_database(request.param, tmp_path, upgrade=False) as db:
        yield db


@pytest.fixture
def registry(database: Database, clock: FakeClock) -> CustomerRegistry:
    return CustomerRegistry(database, clock=clock)


@pytest.fixture
def accounts(database: Database, clock: FakeClock) -> KitAccounts:
    return KitAccounts(database, clock=clock)


@pytest.fixture
def attempt_log(database: Database, clock: FakeClock) -> AttemptLog:
    return AttemptLog(database, clock=clock)


# ============================================ end of storage fixtures ====================================


# =========================================================================================================
# Bot fixtures: the real Application on the offline stand-in (see tests/kit/botkit.py)
#
#   bot             a running offline bot on `database` (both backends) with the demo customers and `clock`
#   sqlite_bot      the same on SQLite only, for tests whose subject is not the database
# =========================================================================================================


@pytest.fixture
async def bot(database: Database, clock: FakeClock) -> AsyncIterator[object]:
    from tests.kit.botkit import running_bot

    async with running_bot(database, clock) as running:
        yield running


@pytest.fixture
async def sqlite_bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[object]:
    from tests.kit.botkit import running_bot

    async with make_test_database("sqlite", tmp_path) as db, running_bot(db, clock) as running:
        yield running


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-transcripts",
        action="store_true",
        help="rewrite tests/flows/transcripts/*.txt from the current bot (review the diff before committing)",
    )
