"""Shared pytest fixtures. Keep each helper's fixtures in their own clearly marked section."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
#   database        an upgraded, empty Database; parametrized: [sqlite] (a temp file, a copy of the session's
#                   upgraded template) and [postgres] (a schema in TEST_POSTGRES_URL, upgraded once and
#                   emptied after each test; see "templates" below; skipped if unreachable)
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


# --- templates: the schema is made once per session, not once per test -------------------------------------
#
# An upgrade runs eight migrations (~0.1 s on SQLite, ~0.25 s on PostgreSQL plus the schema's drop); the
# suite asks for an upgraded, empty database about 500 times. SQLite: the file of one upgrade is copied.
# PostgreSQL: an upgraded schema goes back to a pool after its test, emptied (every row deleted, every
# sequence restarted), unless its structure changed (tables, columns, indexes, constraints, triggers,
# functions, the alembic revision): then, or when anything about the reset fails, it is dropped as before.

_sqlite_template: list[Path] = []
_postgres_free: list[str] = []  # upgraded, empty schemas ready for a test
_postgres_shape: dict[str, str] = {}  # schema -> its structure right after the upgrade

# Everything about a schema's structure that a test could change, with the schema's name left out.
_SHAPE = """
SELECT coalesce(string_agg(replace(item, $1::text || '.', ''), E'\n' ORDER BY item), '') FROM (
  SELECT 'rel ' || relname || ' ' || relkind::text || relpersistence::text AS item
    FROM pg_class WHERE relnamespace = $1::text::regnamespace
  UNION ALL SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = $1::text::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT 'idx ' || indexdef FROM pg_indexes WHERE schemaname = $1::text
  UNION ALL SELECT 'con ' || conname::text || ' ' || contype::text || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = $1::text::regnamespace
  UNION ALL SELECT 'trg ' || tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = $1::text::regnamespace AND NOT t.tgisinternal
  UNION ALL SELECT 'fn ' || proname FROM pg_proc WHERE pronamespace = $1::text::regnamespace
) shape
"""


_RESTART_SEQUENCES = """
SELECT setval(c.oid, s.seqstart, false) FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
WHERE c.relnamespace = $1::text::regnamespace
"""


async def _sqlite_template_file() -> Path:
    """An SQLite file upgraded to the latest revision, made once per session."""
    if not _sqlite_template:
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="unogas-template-")) / "template.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await db.upgrade()
        finally:
            await db.dispose()
        assert not path.with_name("template.db-wal").exists(), "the template is checkpointed"
        _sqlite_template.append(path)
    return _sqlite_template[0]


async def _take_postgres_schema(admin: Any) -> str:
    """An upgraded, empty schema: one from the pool, else a new one."""
    if _postgres_free:
        return _postgres_free.pop()
    schema = f"t_{secrets.token_hex(6)}"
    await admin.execute(f"CREATE SCHEMA {schema}")
    db = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        await db.upgrade()
    finally:
        await db.dispose()
    _postgres_shape[schema] = await _shape(admin, schema)
    return schema


async def _shape(admin: Any, schema: str) -> str:
    """The structure of `schema` and its alembic revision, as text to compare."""
    structure = await admin.fetchval(_SHAPE, schema)
    revisions = await admin.fetch(f"SELECT version_num FROM {schema}.alembic_version")
    return f"{structure}\nrevision {sorted(row['version_num'] for row in revisions)}"


async def _give_back_postgres_schema(admin: Any, schema: str) -> None:
    """Empty `schema` for the next test if its structure is as the upgrade left it; else drop it."""
    try:
        await admin.execute("SET lock_timeout = '5s'")
        same = await _shape(admin, schema) == _postgres_shape[schema]
        tables = await admin.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'alembic_version'", schema
        )
        if same and tables:
            # What TRUNCATE ... RESTART IDENTITY does, in a twelfth of its time on these small tables: every
            # row deleted (foreign keys unchecked meanwhile: all rows go) and every sequence at its start.
            async with admin.transaction():
                await admin.execute("SET LOCAL session_replication_role = replica")
                await admin.execute("; ".join(f'DELETE FROM {schema}."{row["tablename"]}"' for row in tables))
                await admin.execute(_RESTART_SEQUENCES, schema)
            _postgres_free.append(schema)
            return
    except Exception:  # anything odd about it: drop it, as every schema was dropped before the pool
        pass
    _postgres_shape.pop(schema, None)
    await admin.execute(f"DROP SCHEMA {schema} CASCADE")


async def _drop_pooled_schemas() -> None:
    import asyncpg

    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        while _postgres_free:
            await admin.execute(f"DROP SCHEMA IF EXISTS {_postgres_free.pop()} CASCADE")
    finally:
        await admin.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    import asyncio
    import shutil

    if _postgres_free:
        asyncio.run(_drop_pooled_schemas())
    for path in _sqlite_template:
        shutil.rmtree(path.parent, ignore_errors=True)


@asynccontextmanager
async def make_test_database(
    backend: str, tmp_path: Path, *, upgrade: bool = True, pool_timeout: float | None = None
) -> AsyncIterator[Database]:
    """A throw-away Database of the given backend ("sqlite" or "postgres"); usable outside fixtures too.
    `pool_timeout` replaces the production bound on the wait for a pooled connection or the write turn.
    With `upgrade`, the database is at the latest revision and empty (a copy of the session's template)."""
    waits = {} if pool_timeout is None else {"pool_timeout": pool_timeout}
    if backend == "sqlite":
        path = tmp_path / "t.db"
        if upgrade:
            import shutil

            shutil.copyfile(await _sqlite_template_file(), path)
        db = Database(f"sqlite+aiosqlite:///{path}", **waits)
        try:
            yield db
        finally:
            await db.dispose()
        return

    await _check_postgres()
    import asyncpg

    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        if upgrade:
            schema = await _take_postgres_schema(admin)
        else:
            schema = f"t_{secrets.token_hex(6)}"
            await admin.execute(f"CREATE SCHEMA {schema}")
        db = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}, **waits)
        try:
            yield db
        finally:
            try:
                await db.dispose()
            finally:
                if upgrade:
                    await _give_back_postgres_schema(admin, schema)
                else:
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
