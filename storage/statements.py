"""SQL the repositories share: the upsert of both dialects, and `Lookup`, a read statement compiled once
and sent to SQLite in one driver call (the query cache of a conversation's look-ups)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, Select, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection


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
