"""The database: engine, sessions, transactions and units of work (SQLite via aiosqlite, PostgreSQL via
asyncpg). Connection behaviour is storage/sqlite_hooks.py, shared SQL storage/statements.py, schema
upgrades storage/migrate.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool

from storage.migrate import UPGRADE_LOCK_KEY, alembic_config, current_revision_sync, upgrade_sync
from storage.sqlite_hooks import (
    BEGIN_ON_WRITE,
    SQLITE_AUTOCOMMIT_READ,
    SQLITE_IMMEDIATE,
    WROTE,
    DbSession,
    drop_timed_out_connection,
    install_sqlite_hooks,
    rollback_if_open,
)
from storage.statements import Lookup, upsert_statement

__all__ = [
    "AUDITED",
    "CONNECT_TIMEOUT",
    "POOL_TIMEOUT",
    "POSTGRES_POOL_SIZE",
    "SQLITE_POOL_SIZE",
    "STATEMENT_TIMEOUT",
    "WROTE",
    "Database",
    "Lookup",
    "alembic_config",
    "database_unavailable",
    "default_sqlite_url",
    "upsert_statement",
]

# Seconds to wait for PostgreSQL to accept a connection.
CONNECT_TIMEOUT = 10
# Seconds one statement may take before the customer is told the service is unavailable: PostgreSQL
# cancels it (statement_timeout) and the driver gives up on a server that answers nothing at all
# (asyncpg's command_timeout, a little later so a live server's own cancel comes first); SQLite waits as
# long for another process's write lock (busy_timeout). Bulk work (imports, migrations) has no limit.
STATEMENT_TIMEOUT = 10.0
# Seconds the driver waits beyond STATEMENT_TIMEOUT before it stops waiting for the server.
_CLIENT_GRACE = 0.5
# Seconds to wait for a pooled connection (and, on SQLite, for this process's write turn).
POOL_TIMEOUT = 5.0
# Key in a session's `info`: the audit events its transaction recorded (see Database.committed).
AUDITED = "unogas_audited_events"
# Connections kept by the pool of a file-backed SQLite database (see Database.__init__).
SQLITE_POOL_SIZE = 15
# Connections the pool keeps on PostgreSQL, and the most it opens (see Database.__init__).
POSTGRES_POOL_SIZE = 20


# Errors meaning "the database is not reachable now" (retry later), as opposed to a bug in a statement.
_UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


# PostgreSQL's SQLSTATEs of a statement that ran out of time: statement_timeout (or a cancel request),
# lock_timeout. Retrying later can succeed; the statement itself is fine.
_TIMED_OUT_SQLSTATES = frozenset({"57014", "55P03"})


def database_unavailable(exc: BaseException) -> bool:
    """Is `exc` the database being unreachable or overloaded (worth retrying), rather than a bug?"""
    if isinstance(exc, _UNAVAILABLE):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in _TIMED_OUT_SQLSTATES


def default_sqlite_url(path: str | Path = "unogas.db") -> str:
    """An async SQLAlchemy URL for an SQLite file (relative paths are relative to the working directory)."""
    return f"sqlite+aiosqlite:///{Path(path)}"


class Database:
    """The bot's database: an async engine, a session factory and schema upgrades.

    ``Database(url)`` creates its own engine (extra keyword arguments go to ``create_async_engine``, e.g.
    ``connect_args``); ``Database.from_engine(engine)`` wraps an existing one.

    No wait is unbounded, so a customer hears "try again shortly" instead of waiting forever on a database
    that stopped answering: ``statement_timeout`` seconds per statement (None: no limit), ``pool_timeout``
    for a connection from the pool (and on SQLite for the process's write turn), ``connect_timeout`` for
    PostgreSQL to accept a new connection. Bulk work (``transaction(bulk=True)``, schema changes) has no
    statement limit: on PostgreSQL it runs on a second engine without one, opened when first needed.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        statement_timeout: float | None = STATEMENT_TIMEOUT,
        pool_timeout: float = POOL_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        **engine_kwargs: Any,
    ) -> None:
        self.pool_timeout = pool_timeout
        self._busy_timeout = STATEMENT_TIMEOUT if statement_timeout is None else statement_timeout
        self._bulk_args: tuple[str, bool, dict[str, Any]] | None = None
        postgres = make_url(url).drivername == "postgresql+asyncpg"
        unbounded_connect_args: dict[str, Any] = {}
        if postgres:
            # asyncpg waits 60 s for a server that does not answer; a customer should hear sooner that
            # the service is unavailable (a refused connection fails at once anyway).
            connect_args = dict(engine_kwargs.get("connect_args") or {})
            connect_args.setdefault("timeout", connect_timeout)
            unbounded_connect_args = dict(connect_args)
            if statement_timeout is not None:
                server_settings = dict(connect_args.get("server_settings") or {})
                limit = str(round(statement_timeout * 1000))
                server_settings.setdefault("statement_timeout", limit)
                # A transaction left open by a process that froze (SIGSTOP, a stalled VM) would hold the
                # leadership epoch's row lock and keep a new leader waiting: the server ends it.
                server_settings.setdefault("idle_in_transaction_session_timeout", limit)
                connect_args["server_settings"] = server_settings
                connect_args.setdefault("command_timeout", statement_timeout + _CLIENT_GRACE)
            engine_kwargs["connect_args"] = connect_args
        # SQL parameters (names, e-mails, hashes) stay out of SQL logs and out of error messages.
        engine_kwargs.setdefault("hide_parameters", True)
        # On SQLite a look-up leaves no transaction open (no BEGIN, see `read`), so the pool's rollback when
        # a connection comes back is a round trip to the driver's thread for nothing: it rolls back only
        # when a transaction is open instead (SQLAlchemy's recipe for custom reset schemes).
        parsed = make_url(url)
        sqlite_db = parsed.get_backend_name() == "sqlite"
        custom_reset = sqlite_db and "pool_reset_on_return" not in engine_kwargs
        if custom_reset:
            engine_kwargs["pool_reset_on_return"] = None
        pool_class = engine_kwargs.get("poolclass") or parsed.get_dialect().get_pool_class(parsed)
        if sqlite_db and issubclass(pool_class, QueuePool):
            # SQLAlchemy's default pool keeps 5 connections and opens up to 10 more for bursts, closing each
            # again when it comes back: on SQLite every such connection is a new driver thread, file handle
            # and set of PRAGMAs, hundreds of times a second under a burst of look-ups. The same 15 at most,
            # kept once opened, do the same work without that churn.
            engine_kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
            engine_kwargs.setdefault("max_overflow", 0)
        if postgres and issubclass(pool_class, QueuePool):
            # SQLAlchemy's default keeps 5 connections and opens up to 10 more for bursts, closing each
            # again when it comes back: a hundred customers answering at once used all 15, and every
            # overflow connection, opened for one unit of work, cost a PostgreSQL backend started, TLS
            # asked for, types introspected and each statement prepared anew (a fifth of the bot's round
            # trips and about a tenth of its CPU per update in the benchmark). The slower each unit then
            # got, the more units were open at once: with 20 kept and 10 more for bursts, 30 were in use
            # and the churn went on. 20 kept, and no more, serve the same burst with at most 14 in use and
            # no connection opened after the first ones (a unit that finds all 20 in use waits for one, up
            # to `pool_timeout`, as it waited for the 15 before).
            engine_kwargs.setdefault("pool_size", POSTGRES_POOL_SIZE)
            engine_kwargs.setdefault("max_overflow", 0)
        if issubclass(pool_class, QueuePool):
            engine_kwargs.setdefault("pool_timeout", pool_timeout)
        if postgres:
            self._bulk_args = (url, echo, {**engine_kwargs, "connect_args": unbounded_connect_args})
        engine = create_async_engine(url, echo=echo, **engine_kwargs)
        if custom_reset:
            event.listen(engine.sync_engine, "reset", rollback_if_open)
        if postgres:
            event.listen(engine.sync_engine, "handle_error", drop_timed_out_connection)
        self._init(engine)

    @classmethod
    def from_engine(cls, engine: AsyncEngine) -> Database:
        """Wrap an engine created elsewhere (SQLite hooks are installed on it)."""
        self = cls.__new__(cls)
        self._bulk_args = None
        self.pool_timeout = POOL_TIMEOUT
        self._busy_timeout = STATEMENT_TIMEOUT
        self._init(engine)
        return self

    def _init(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        if self.dialect == "sqlite":
            database = make_url(str(engine.url)).database
            file_backed = bool(database) and database != ":memory:" and "mode=memory" not in str(engine.url)
            install_sqlite_hooks(engine, file_backed=file_backed, busy_timeout=self._busy_timeout)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, sync_session_class=DbSession)
        # Called with each audit event's name once its transaction has committed (e.g. the bot's metrics);
        # a callback, not a cursor event, so the Lookups keep their one-call path.
        self.audit_observers: list[Callable[[str], None]] = []
        self._bulk: AsyncEngine | None = None  # see _bulk_engine
        self._writers: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._reads: tuple[AsyncEngine, AsyncEngine] | None = None  # see _read_engine
        # The leadership epoch this process writes under (storage/inbox.py's Fence; PostgreSQL only): set
        # by `run` once it leads, checked by every transaction that writes for a customer.
        self.fence: Any = None

    def _bulk_engine(self) -> AsyncEngine:
        """The engine for work that may take long: on PostgreSQL one without the statement timeout."""
        if self._bulk_args is None:
            return self.engine
        if self._bulk is None:
            url, echo, kwargs = self._bulk_args
            self._bulk = create_async_engine(url, echo=echo, **kwargs)
        return self._bulk

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """SQLite's one write lock, as an asyncio lock for the writers of this process (one per event loop).

        Queued here, in order, a writer holds no pooled connection while it waits: left to SQLite's busy
        handler, the writers of an overloaded process each poll for the lock while holding a connection, and
        some ran out of the busy timeout (hundreds of registrations at once on a busy CPU, measured). The
        wait is bounded like the pool's (``pool_timeout``), so a write stuck behind another process's long
        transaction fails (the customer is asked to retry) rather than queueing every writer behind it.
        Other processes (the CLI) meet the busy timeout. Write transactions of one task must therefore not
        nest (none does: each repository method opens its own).
        """
        loop = asyncio.get_running_loop()
        if self._writers is None or self._writers[0] is not loop:
            self._writers = (loop, asyncio.Lock())
        lock = self._writers[1]
        try:
            async with asyncio.timeout(self.pool_timeout):
                await lock.acquire()
        except TimeoutError:
            raise PoolTimeout(f"no write turn within {self.pool_timeout:g} s") from None
        try:
            yield
        finally:
            lock.release()

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
                await session.connection(execution_options={SQLITE_AUTOCOMMIT_READ: True})
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection for ONE read statement: the cheapest way to a look-up (no ORM session; on
        SQLite no BEGIN either). For the look-ups on a conversation's path (identity check, e-mail in use),
        which run once per customer reply."""
        async with self._read_engine().connect() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose every statement commits on its own, for a write that is one statement (the
        update inbox's): one round trip, no BEGIN or COMMIT. Writers on SQLite take `write_turn()` first."""
        async with self._read_engine().connect() as conn:
            if self.dialect != "sqlite":
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    def _read_engine(self) -> AsyncEngine:
        """The engine behind the session factory, so reads go wherever sessions go (tests swap the factory
        to simulate a database outage); on SQLite with the no-BEGIN option already set, which is cheaper
        than setting it on each connection (one trip through a greenlet less per look-up)."""
        engine: AsyncEngine = self._sessions.kw.get("bind") or self.engine
        if self.dialect != "sqlite":
            return engine
        if self._reads is None or self._reads[0] is not engine:
            self._reads = (engine, engine.execution_options(**{SQLITE_AUTOCOMMIT_READ: True}))
        return self._reads[1]

    @asynccontextmanager
    async def transaction(self, *, bulk: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction: committed on success, rolled back on any exception.

        On SQLite the transaction starts with BEGIN IMMEDIATE, so concurrent writers queue up on the
        write lock rather than failing halfway. ``bulk`` (a customer import) lifts the statement timeout.
        """
        if self.dialect != "sqlite":
            sessions = self._sessions
            if bulk and self._bulk_args is not None:
                sessions = async_sessionmaker(self._bulk_engine(), expire_on_commit=False)
            async with sessions() as session:
                async with session.begin():
                    yield session
                    if self.fence is not None and session.info.get(WROTE):
                        await self.fence.check(session)  # a newer leader: roll back (storage/inbox.py)
                self.committed(session)
            return
        async with self.write_turn(), self._sessions() as session:
            async with session.begin():
                # The first connection() call of the transaction procures the connection with these
                # options, so the "begin" hook sees them.
                await session.connection(execution_options={SQLITE_IMMEDIATE: True})
                yield session
            self.committed(session)

    def committed(self, session: AsyncSession) -> None:
        """`session`'s transaction has committed: tell the audit observers which events it recorded (the
        repositories note them in ``session.info[AUDITED]``; a rollback discards the session and them)."""
        for event_name in session.info.pop(AUDITED, ()):
            for observer in self.audit_observers:
                observer(event_name)

    @asynccontextmanager
    async def unit(self, *, deferred: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction that is committed only when the caller says so
        (``await session.commit()``) and rolled back otherwise: the unit of work's transaction.

        Like `transaction()`, on SQLite it takes the write lock up front (and this process's write turn).
        `deferred` (SQLite; elsewhere it changes nothing): the write turn is taken at once, but BEGIN
        IMMEDIATE only just before the first write, so a unit that turns out to write nothing (most
        identity checks and e-mail steps) makes no transaction at all. Its reads before that write are each
        a statement on its own: ordered with every writer of this process, which all wait for the turn,
        but not with another process's writes (the CLI's), which may land between two of them. A write is
        an INSERT, UPDATE or DELETE run through the session (`session.execute`), the only way the
        repositories write.
        """
        if self.dialect != "sqlite":
            async with self._sessions() as session:
                await session.begin()
                yield session  # leaving the session rolls back whatever was not committed
            return
        async with self.write_turn(), self._sessions() as session:
            if deferred and isinstance(session.sync_session, DbSession):
                await session.connection(execution_options={SQLITE_AUTOCOMMIT_READ: True})
                session.info[BEGIN_ON_WRITE] = True
            else:
                await session.connection(execution_options={SQLITE_IMMEDIATE: True})
            yield session

    async def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to the latest alembic revision; idempotent, works on an empty database."""
        await self.run_schema_change(upgrade_sync, revision)

    async def run_schema_change(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(sync_connection, *args)`` in one transaction that no other schema change runs alongside.

        Used by ``upgrade()`` and by the migrations' env.py when run from the alembic command line. No
        statement timeout: a migration may rewrite a big table, and waits for another process's upgrade.
        """
        async with self._bulk_engine().connect() as conn:
            if self.dialect == "sqlite":
                conn = await conn.execution_options(**{SQLITE_IMMEDIATE: True})
            async with conn.begin():
                if self.dialect == "postgresql":
                    # Two processes starting at once must not both create the schema.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
                await conn.run_sync(fn, *args)

    async def current_revision(self) -> str | None:
        """The alembic revision the database is at (None for an empty database)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(current_revision_sync)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._bulk is not None:
            await self._bulk.dispose()
        await self.engine.dispose()
