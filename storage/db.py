"""Database engine, sessions and schema upgrades (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Insert, Table, event, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option asking for "BEGIN IMMEDIATE" on SQLite (see _install_sqlite_hooks).
_SQLITE_IMMEDIATE = "unogas_sqlite_immediate"
# Execution option for read sessions on SQLite: no BEGIN at all (see Database.session).
_SQLITE_AUTOCOMMIT_READ = "unogas_sqlite_autocommit_read"
# Arbitrary constant: PostgreSQL advisory lock key serialising concurrent schema upgrades.
_UPGRADE_LOCK_KEY = 0x756E6F676173  # "unogas"
# Seconds to wait for PostgreSQL to accept a connection.
CONNECT_TIMEOUT = 10


def utcnow() -> datetime:
    """The default clock of every repository: now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def default_sqlite_url(path: str | Path = "unogas.db") -> str:
    """An async SQLAlchemy URL for an SQLite file (relative paths are relative to the working directory)."""
    return f"sqlite+aiosqlite:///{Path(path)}"


def alembic_config() -> Config:
    """The alembic configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    # configparser interpolation: a literal "%" in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _install_sqlite_hooks(engine: AsyncEngine, *, file_backed: bool) -> None:
    """Make SQLite behave: foreign keys, WAL, a busy timeout and transactions we control.

    The sqlite3 module normally opens transactions lazily (and not for DDL), which breaks transactional
    migrations and lets two writers deadlock on the read-to-write lock upgrade (SQLITE_BUSY without any
    waiting). So the driver's own transaction handling is switched off and SQLAlchemy's "begin" event emits
    BEGIN itself; write transactions ask for BEGIN IMMEDIATE, which takes the write lock up front and waits
    for it (busy_timeout) instead of failing.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if file_backed:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_SQLITE_AUTOCOMMIT_READ, False):
            return  # the driver is in autocommit mode: each statement is its own transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_SQLITE_IMMEDIATE, False) else "BEGIN")


def upsert_statement(
    dialect: str, table: Table, *, key: str, update: Sequence[str], changed_only: bool = False
) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET <update columns> for SQLite or PostgreSQL.

    With ``changed_only`` a conflicting row is only touched when a non-timestamp column in ``update``
    differs, so e.g. ``updated_at`` keeps telling when the data last changed.
    """
    builders: dict[str, Callable[[Table], Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if dialect not in builders:
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    stmt = builders[dialect](table)
    where = None
    if changed_only:
        compared = [name for name in update if not name.endswith("_at")]
        where = or_(*(table.c[name].is_distinct_from(stmt.excluded[name]) for name in compared))
    return stmt.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={name: stmt.excluded[name] for name in update},
        where=where,
    )


class Database:
    """The bot's database: an async engine, a session factory and schema upgrades.

    ``Database(url)`` creates its own engine (extra keyword arguments go to ``create_async_engine``, e.g.
    ``connect_args``); ``Database.from_engine(engine)`` wraps an existing one.
    """

    def __init__(self, url: str, *, echo: bool = False, **engine_kwargs: Any) -> None:
        if make_url(url).drivername == "postgresql+asyncpg":
            # asyncpg waits 60 s for a server that does not answer; a customer should hear sooner that
            # the service is unavailable (a refused connection fails at once anyway).
            connect_args = dict(engine_kwargs.get("connect_args") or {})
            connect_args.setdefault("timeout", CONNECT_TIMEOUT)
            engine_kwargs["connect_args"] = connect_args
        # SQL parameters (names, e-mails, hashes) stay out of SQL logs and out of error messages.
        engine_kwargs.setdefault("hide_parameters", True)
        self._init(create_async_engine(url, echo=echo, **engine_kwargs))

    @classmethod
    def from_engine(cls, engine: AsyncEngine) -> Database:
        """Wrap an engine created elsewhere (SQLite hooks are installed on it)."""
        self = cls.__new__(cls)
        self._init(engine)
        return self

    def _init(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect == "sqlite":
            database = make_url(str(engine.url)).database
            file_backed = bool(database) and database != ":memory:" and "mode=memory" not in str(engine.url)
            _install_sqlite_hooks(engine, file_backed=file_backed)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._writers: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _writer_turn(self) -> asyncio.Lock:
        """SQLite's one write lock, as an asyncio lock for the writers of this process (one per event loop).

        Queued here, in order, a writer holds no pooled connection while it waits and cannot time out: left
        to SQLite's busy handler, the writers of an overloaded process each poll for the lock while holding
        a connection, and some ran out of the 30 s busy timeout (hundreds of registrations at once on a busy
        CPU, measured). Other processes (the CLI) still meet the busy timeout. Write transactions of one task
        must therefore not nest (none does: each repository method opens its own).
        """
        loop = asyncio.get_running_loop()
        if self._writers is None or self._writers[0] is not loop:
            self._writers = (loop, asyncio.Lock())
        return self._writers[1]

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A plain session, for reads: on exit anything uncommitted is rolled back.

        Write through ``transaction()`` instead: on SQLite it takes the write lock up front. On SQLite a
        read session sends no BEGIN (each statement is its own transaction), which saves three round trips
        to the driver thread per look-up; several reads that must see one snapshot belong in
        ``transaction()``.
        """
        async with self._sessions() as session:
            if self.dialect == "sqlite":
                await session.connection(execution_options={_SQLITE_AUTOCOMMIT_READ: True})
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection for ONE read statement: the cheapest way to a look-up (no ORM session; on
        SQLite no BEGIN either). For the look-ups on a conversation's path (identity check, e-mail in use),
        which run once per customer reply."""
        # The engine behind the session factory, so reads go wherever sessions go (tests swap the factory
        # to simulate a database outage).
        engine: AsyncEngine = self._sessions.kw.get("bind") or self.engine
        async with engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = await conn.execution_options(**{_SQLITE_AUTOCOMMIT_READ: True})
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction: committed on success, rolled back on any exception.

        On SQLite the transaction starts with BEGIN IMMEDIATE, so concurrent writers queue up on the
        write lock rather than failing halfway.
        """
        if self.dialect != "sqlite":
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._writer_turn(), self._sessions() as session, session.begin():
            # The first connection() call of the transaction procures the connection with these options,
            # so the "begin" hook sees them.
            await session.connection(execution_options={_SQLITE_IMMEDIATE: True})
            yield session

    async def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to the latest alembic revision; idempotent, works on an empty database."""
        await self.run_schema_change(_upgrade_sync, revision)

    async def run_schema_change(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(sync_connection, *args)`` in one transaction that no other schema change runs alongside.

        Used by ``upgrade()`` and by the migrations' env.py when run from the alembic command line.
        """
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = await conn.execution_options(**{_SQLITE_IMMEDIATE: True})
            async with conn.begin():
                if self.dialect == "postgresql":
                    # Two processes starting at once must not both create the schema.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY})
                await conn.run_sync(fn, *args)

    async def current_revision(self) -> str | None:
        """The alembic revision the database is at (None for an empty database)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision_sync)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _upgrade_sync(connection: Connection, revision: str) -> None:
    config = alembic_config()
    # env.py picks this connection up instead of creating its own engine.
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current_revision_sync(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
