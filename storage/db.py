"""Database engine, sessions and schema upgrades (SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Insert, Select, Table, event, or_, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import PoolResetState, QueuePool
from sqlalchemy.util import await_only

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option asking for "BEGIN IMMEDIATE" on SQLite (see _install_sqlite_hooks).
_SQLITE_IMMEDIATE = "unogas_sqlite_immediate"
# Execution option for read sessions on SQLite: no BEGIN at all (see Database.session).
_SQLITE_AUTOCOMMIT_READ = "unogas_sqlite_autocommit_read"
# Key in a session's `info`: a deferred unit of work that has not written yet (see Database.unit).
_BEGIN_ON_WRITE = "unogas_begin_on_write"
# Key in a session's `info`: an INSERT, UPDATE or DELETE ran through the session.
WROTE = "unogas_wrote"
# Arbitrary constant: PostgreSQL advisory lock key serialising concurrent schema upgrades.
_UPGRADE_LOCK_KEY = 0x756E6F676173  # "unogas"
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


def alembic_config() -> Config:
    """The alembic configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    # configparser interpolation: a literal "%" in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _install_sqlite_hooks(engine: AsyncEngine, *, file_backed: bool, busy_timeout: float) -> None:
    """Make SQLite behave: foreign keys, WAL, a busy timeout and transactions we control.

    The sqlite3 module normally opens transactions lazily (and not for DDL), which breaks transactional
    migrations and lets two writers deadlock on the read-to-write lock upgrade (SQLITE_BUSY without any
    waiting). So the driver's own transaction handling is switched off and SQLAlchemy's "begin" event emits
    BEGIN itself; write transactions ask for BEGIN IMMEDIATE, which takes the write lock up front and waits
    for it (busy_timeout, the statement timeout: SQLite's only wait for another process) instead of failing.
    """
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
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
        _sqlite_begin(conn, "BEGIN IMMEDIATE" if options.get(_SQLITE_IMMEDIATE, False) else "BEGIN")


def _sqlite_begin(conn: Connection, sql: str) -> None:
    """Send `sql` (a BEGIN) on an SQLite connection, from inside SQLAlchemy's greenlet."""
    driver = getattr(conn.connection.dbapi_connection, "driver_connection", None)
    if isinstance(driver, aiosqlite.Connection):
        # One trip to aiosqlite's thread instead of the adapter's three (cursor, execute, close): every
        # write transaction starts here, a reservation and the persistence's flush included.
        try:
            await_only(driver.execute_fetchall(sql))
        except sqlite3.Error as exc:  # e.g. "database is locked": raised as SQLAlchemy would raise it
            raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=conn.dialect) from exc
    else:
        conn.exec_driver_sql(sql)


class _Session(Session):
    """The sessions of a `Database`: on SQLite a unit of work's may defer its BEGIN (see `Database.unit`)."""


@event.listens_for(_Session, "do_orm_execute")
def _begin_before_the_first_write(state: ORMExecuteState) -> None:
    """Note that the session wrote (`WROTE`: a unit of work's commit then checks the leadership); a
    deferred unit of work (SQLite) begins its write transaction just before its first write."""
    if state.is_insert or state.is_update or state.is_delete:
        info = state.session.info
        info[WROTE] = True
        if info.pop(_BEGIN_ON_WRITE, False):
            _sqlite_begin(state.session.connection(), "BEGIN IMMEDIATE")


def _drop_timed_out_connection(context: ExceptionContext) -> None:
    """A statement the driver gave up on (asyncpg's command_timeout): close its connection at once.

    Left to the pool, the connection would be rolled back, which waits for the server to acknowledge the
    cancelled statement: a second full timeout when the server is silent. Aborting the socket first makes
    the invalidation immediate; only this connection goes (the pool's others are tried, and time out, on
    their own, rather than all being closed gracefully at their next checkout).
    """
    if not isinstance(context.original_exception, TimeoutError) or context.connection is None:
        return
    with contextlib.suppress(Exception):
        context.connection.connection.driver_connection.terminate()  # type: ignore[union-attr]
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False


def _rollback_if_open(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """The pool's reset of an SQLite connection coming back: what its default rollback does, skipped when
    the connection has no transaction open (the rollback would do nothing)."""
    if state.transaction_was_reset or not state.asyncio_safe:
        return  # as the default: already rolled back, or garbage-collected outside the event loop
    if getattr(dbapi_connection.driver_connection, "in_transaction", True):
        dbapi_connection.rollback()


def upsert_statement(
    dialect: str, table: Table, *, key: str | Sequence[str], update: Sequence[str], changed_only: bool = False
) -> Insert:
    """INSERT ... ON CONFLICT (key columns) DO UPDATE SET <update columns> for SQLite or PostgreSQL.

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
        index_elements=[table.c[name] for name in ([key] if isinstance(key, str) else key)],
        set_={name: stmt.excluded[name] for name in update},
        where=where,
    )


class Lookup:
    """A read statement on a conversation's path, compiled once per dialect: ``await lookup.rows(conn, ...)``.

    Through SQLAlchemy's aiosqlite adapter one SELECT is four round trips to the driver's thread (cursor,
    execute, fetch, close) plus compiling-cache and result bookkeeping: about 0.3 ms of CPU, more than
    answering the customer's message costs PTB. On SQLite this sends the compiled SQL in ONE driver call
    instead (``execute_fetchall``), with SQLAlchemy's own parameter and result conversions, and its errors
    wrapped in SQLAlchemy's exceptions as usual. Other databases, and SQLite while SQL is logged or cursor
    events are listened to, go through SQLAlchemy unchanged.

    Parameters are named ``bindparam``s of the statement; expanding (IN-list) parameters are not supported.

    Only documented APIs: ``Compiled.construct_params``, ``SQLCompiler.positiontup`` and ``binds`` (the
    attributes SQLAlchemy's FAQ uses to render parameters), ``TypeEngine.bind_processor`` and
    ``result_processor`` (the custom-type API) and aiosqlite's ``execute_fetchall``.
    tests/storage/test_storage_db.py compares every Lookup's answers with SQLAlchemy's own on both
    databases, so an upgrade that changed any of them would fail the suite rather than return wrong rows.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _CompiledLookup] = {}

    async def rows(self, conn: AsyncConnection, **params: Any) -> list[tuple[Any, ...]]:
        dialect = conn.dialect
        if dialect.name != "sqlite" or not dialect.positional or self._watched(conn):
            return [tuple(row) for row in await conn.execute(self.statement, params)]
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _CompiledLookup(self.statement, dialect)
        driver = (await conn.get_raw_connection()).driver_connection
        args = compiled.arguments(params)
        try:
            rows = await driver.execute_fetchall(compiled.sql, args)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            # As SQLAlchemy would raise it (OperationalError for "database is locked", ...): parameters
            # (e-mails, names) stay out of the message.
            raise DBAPIError.instance(
                compiled.sql, args, exc, sqlite3.Error, hide_parameters=True, dialect=dialect
            ) from exc
        return compiled.results(rows)

    @staticmethod
    def _watched(conn: AsyncConnection) -> bool:
        """SQL logging or cursor events are on: go through SQLAlchemy, so whoever watches sees the SQL."""
        dispatch = conn.sync_connection.dispatch if conn.sync_connection is not None else None
        return bool(
            conn.sync_engine.echo
            or dispatch is None
            or dispatch.before_cursor_execute
            or dispatch.after_cursor_execute
        )


class _CompiledLookup:
    """A Lookup's SQL for one dialect, with the conversions SQLAlchemy applies to its parameters and
    result columns (e.g. UTCDateTime's text form on SQLite)."""

    def __init__(self, statement: Select[Any], dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params:
            raise ValueError("a Lookup cannot have expanding (IN-list) parameters")
        self.sql = compiled.string
        self._compiled = compiled
        names = compiled.positiontup or []
        self._binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names
        ]
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self._processors = processors if any(processors) else None

    def arguments(self, params: dict[str, Any]) -> tuple[Any, ...]:
        values = self._compiled.construct_params(params, escape_names=False)
        return tuple(
            values[name] if convert is None else convert(values[name]) for name, convert in self._binds
        )

    def results(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        processors = self._processors
        if processors is None:
            return [tuple(row) for row in rows]
        return [
            tuple(v if convert is None else convert(v) for convert, v in zip(processors, row, strict=True))
            for row in rows
        ]


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
        if issubclass(pool_class, QueuePool):
            engine_kwargs.setdefault("pool_timeout", pool_timeout)
        if postgres:
            self._bulk_args = (url, echo, {**engine_kwargs, "connect_args": unbounded_connect_args})
        engine = create_async_engine(url, echo=echo, **engine_kwargs)
        if custom_reset:
            event.listen(engine.sync_engine, "reset", _rollback_if_open)
        if postgres:
            event.listen(engine.sync_engine, "handle_error", _drop_timed_out_connection)
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
            _install_sqlite_hooks(engine, file_backed=file_backed, busy_timeout=self._busy_timeout)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, sync_session_class=_Session)
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
                await session.connection(execution_options={_SQLITE_AUTOCOMMIT_READ: True})
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
            self._reads = (engine, engine.execution_options(**{_SQLITE_AUTOCOMMIT_READ: True}))
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
                await session.connection(execution_options={_SQLITE_IMMEDIATE: True})
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
            if deferred and isinstance(session.sync_session, _Session):
                await session.connection(execution_options={_SQLITE_AUTOCOMMIT_READ: True})
                session.info[_BEGIN_ON_WRITE] = True
            else:
                await session.connection(execution_options={_SQLITE_IMMEDIATE: True})
            yield session

    async def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to the latest alembic revision; idempotent, works on an empty database."""
        await self.run_schema_change(_upgrade_sync, revision)

    async def run_schema_change(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(sync_connection, *args)`` in one transaction that no other schema change runs alongside.

        Used by ``upgrade()`` and by the migrations' env.py when run from the alembic command line. No
        statement timeout: a migration may rewrite a big table, and waits for another process's upgrade.
        """
        async with self._bulk_engine().connect() as conn:
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
        if self._bulk is not None:
            await self._bulk.dispose()
        await self.engine.dispose()


def _upgrade_sync(connection: Connection, revision: str) -> None:
    config = alembic_config()
    # env.py picks this connection up instead of creating its own engine.
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current_revision_sync(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
