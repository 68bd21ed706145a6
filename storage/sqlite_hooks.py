"""How the bot's database connections behave: SQLite's pragmas and the BEGIN we send ourselves, the
deferred BEGIN of a unit of work, and what happens to a connection that timed out or comes back to the
pool. Installed by `Database` (storage/db.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy import Connection, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_only

# Execution option asking for "BEGIN IMMEDIATE" on SQLite (see install_sqlite_hooks).
SQLITE_IMMEDIATE = "unogas_sqlite_immediate"
# Execution option for read sessions on SQLite: no BEGIN at all (see Database.session).
SQLITE_AUTOCOMMIT_READ = "unogas_sqlite_autocommit_read"
# Key in a session's `info`: a deferred unit of work that has not written yet (see Database.unit).
BEGIN_ON_WRITE = "unogas_begin_on_write"
# Key in a session's `info`: an INSERT, UPDATE or DELETE ran through the session.
WROTE = "unogas_wrote"


def install_sqlite_hooks(engine: AsyncEngine, *, file_backed: bool, busy_timeout: float) -> None:
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
        if options.get(SQLITE_AUTOCOMMIT_READ, False):
            return  # the driver is in autocommit mode: each statement is its own transaction
        sqlite_begin(conn, "BEGIN IMMEDIATE" if options.get(SQLITE_IMMEDIATE, False) else "BEGIN")


def sqlite_begin(conn: Connection, sql: str) -> None:
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


class DbSession(Session):
    """The sessions of a `Database`: on SQLite a unit of work's may defer its BEGIN (see `Database.unit`)."""


@event.listens_for(DbSession, "do_orm_execute")
def _begin_before_the_first_write(state: ORMExecuteState) -> None:
    """Note that the session wrote (`WROTE`: a unit of work's commit then checks the leadership); a
    deferred unit of work (SQLite) begins its write transaction just before its first write."""
    if state.is_insert or state.is_update or state.is_delete:
        info = state.session.info
        info[WROTE] = True
        if info.pop(BEGIN_ON_WRITE, False):
            sqlite_begin(state.session.connection(), "BEGIN IMMEDIATE")


def drop_timed_out_connection(context: ExceptionContext) -> None:
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


def rollback_if_open(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """The pool's reset of an SQLite connection coming back: what its default rollback does, skipped when
    the connection has no transaction open (the rollback would do nothing)."""
    if state.transaction_was_reset or not state.asyncio_safe:
        return  # as the default: already rolled back, or garbage-collected outside the event loop
    if getattr(dbapi_connection.driver_connection, "in_transaction", True):
        dbapi_connection.rollback()
