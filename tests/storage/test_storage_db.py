"""storage.db: Lookups (one driver call per look-up on SQLite), the SQLite pool's reset, the PostgreSQL
pool."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, event, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import POSTGRES_POOL_SIZE, SQLITE_POOL_SIZE, Database, Lookup
from storage.models import Attempt

AT = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)

ATTEMPTS_SINCE = Lookup(
    select(Attempt.key, Attempt.at)
    .where(Attempt.kind == bindparam("kind"), Attempt.at > bindparam("since"))
    .order_by(Attempt.at)
)


async def _add_attempts(db: Database) -> None:
    async with db.transaction() as session:
        for minutes, key in ((0, "tg:1"), (10, "tg:2"), (20, "tg:3")):
            await session.execute(
                insert(Attempt).values(kind="verify", key=key, at=AT + timedelta(minutes=minutes))
            )
        await session.execute(insert(Attempt).values(kind="login_user", key="tg:1", at=AT))


async def test_a_lookup_answers_as_sqlalchemy_does(database: Database) -> None:
    await _add_attempts(database)
    since = AT + timedelta(minutes=5)
    async with database.read() as conn:
        rows = await ATTEMPTS_SINCE.rows(conn, kind="verify", since=since)
        expected = [
            tuple(row)
            for row in await conn.execute(ATTEMPTS_SINCE.statement, {"kind": "verify", "since": since})
        ]
    assert rows == expected == [("tg:2", AT + timedelta(minutes=10)), ("tg:3", AT + timedelta(minutes=20))]
    assert all(at.tzinfo is not None for _, at in rows)  # UTCDateTime's conversion applied to results


async def test_a_lookup_without_rows_and_with_an_aggregate(database: Database) -> None:
    count = Lookup(select(func.count()).select_from(Attempt).where(Attempt.key == bindparam("key")))
    async with database.read() as conn:
        assert await count.rows(conn, key="tg:9") == [(0,)]
        assert await ATTEMPTS_SINCE.rows(conn, kind="verify", since=AT) == []


async def test_a_failing_lookup_raises_sqlalchemys_error_without_parameters(tmp_path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # no schema: the table is missing
    try:
        async with db.read() as conn:
            with pytest.raises(OperationalError) as raised:
                await ATTEMPTS_SINCE.rows(conn, kind="secret-kind", since=AT)
        assert "secret-kind" not in str(raised.value)
    finally:
        await db.dispose()


async def test_a_lookup_refuses_in_lists(tmp_path) -> None:
    lookup = Lookup(select(Attempt.id).where(Attempt.key.in_(bindparam("keys", expanding=True))))
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        async with db.read() as conn:
            with pytest.raises(ValueError, match="IN-list"):
                await lookup.rows(conn, keys=["tg:1"])
    finally:
        await db.dispose()


async def test_an_sqlite_connection_comes_back_to_the_pool_without_its_open_transaction(tmp_path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        await db.upgrade()
        assert db.engine.sync_engine.pool.size() == SQLITE_POOL_SIZE
        async with db.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            await driver.execute("BEGIN")
            await driver.execute(
                "INSERT INTO attempts (kind, key, at) VALUES ('verify', 'tg:1', '2026-03-01')"
            )
            assert driver.in_transaction
        # Back in the pool, the transaction was rolled back: nothing was written, and writers are not blocked.
        async with db.transaction() as session:
            await session.execute(insert(Attempt).values(kind="verify", key="tg:2", at=AT))
        async with db.read() as conn:
            assert await ATTEMPTS_SINCE.rows(conn, kind="verify", since=AT - timedelta(days=1)) == [
                ("tg:2", AT)
            ]
    finally:
        await db.dispose()


def test_only_an_unreachable_database_counts_as_unavailable() -> None:
    """A customer is told "try again in a few minutes" for an outage, not for a bug in a statement."""
    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

    from storage.db import database_unavailable

    def wrapped(kind: type[DBAPIError], invalidated: bool = False) -> DBAPIError:
        return kind("SELECT 1", None, Exception("driver"), connection_invalidated=invalidated)

    assert database_unavailable(wrapped(OperationalError))
    assert database_unavailable(ConnectionRefusedError())
    assert database_unavailable(wrapped(DBAPIError, invalidated=True))  # e.g. the server shut down
    assert not database_unavailable(wrapped(IntegrityError))
    assert not database_unavailable(wrapped(ProgrammingError))
    assert not database_unavailable(RuntimeError("a bug"))


async def _attempt_keys(db: Database) -> list[str]:
    async with db.read() as conn:
        return sorted(key for (key,) in await conn.execute(select(Attempt.key)))


async def test_a_deferred_unit_begins_at_its_first_write_and_is_one_transaction(database: Database) -> None:
    sqlite = database.dialect == "sqlite"

    async def in_transaction(session: AsyncSession) -> bool:
        raw = await (await session.connection()).get_raw_connection()
        return bool(raw.driver_connection._conn.in_transaction) if sqlite else True  # type: ignore[union-attr]

    add = insert(Attempt).values(kind="verify", at=AT)
    # Left without commit: both writes are undone, as in any unit of work.
    async with database.unit(deferred=True) as session:
        await session.execute(select(Attempt.id))
        assert await in_transaction(session) is not sqlite  # a read alone opens no transaction on SQLite
        await session.execute(add.values(key="tg:1"))
        assert await in_transaction(session)  # BEGIN IMMEDIATE came just before the write
        await session.execute(add.values(key="tg:2"))
    assert await _attempt_keys(database) == []
    with pytest.raises(RuntimeError):
        async with database.unit(deferred=True) as session:
            await session.execute(add.values(key="tg:1"))
            await session.execute(add.values(key="tg:2"))
            raise RuntimeError("the use case failed halfway")
    assert await _attempt_keys(database) == []
    async with database.unit(deferred=True) as session:
        await session.execute(add.values(key="tg:1"))
        await session.execute(add.values(key="tg:2"))
        await session.commit()
    assert await _attempt_keys(database) == ["tg:1", "tg:2"]


async def test_a_deferred_unit_holds_the_write_turn_from_the_start(tmp_path) -> None:
    """On SQLite its reads are ordered with every writer of the process: a writer waits for the unit."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        await db.upgrade()
        async with db.unit(deferred=True) as session:
            await session.execute(select(Attempt.id))
            writer = asyncio.create_task(_write_one(db))
            await asyncio.sleep(0.2)
            assert not writer.done()
        await asyncio.wait_for(writer, 5)
        assert await _attempt_keys(db) == ["tg:9"]
    finally:
        await db.dispose()


async def _write_one(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(insert(Attempt).values(kind="verify", key="tg:9", at=AT))


async def test_a_postgresql_burst_reuses_the_pools_connections(database: Database) -> None:
    """More units of work at once than the pool holds wait for its connections, and a second burst uses
    the same ones: no connection is opened for one unit and closed again (each costs a server process, a
    TLS request, type introspection and every statement prepared anew; SQLAlchemy's default pool did this
    for every unit beyond its five)."""
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL's pool (SQLite's: the test above)")
    pool = database.engine.sync_engine.pool
    opened: list[object] = []
    event.listen(pool, "connect", lambda *_: opened.append(None))

    async def burst() -> None:
        gate, full, holding = asyncio.Event(), asyncio.Event(), [0]

        async def unit() -> None:
            async with database.transaction() as session:
                await session.execute(text("SELECT 1"))
                holding[0] += 1
                if holding[0] == POSTGRES_POOL_SIZE:
                    full.set()
                await gate.wait()

        units = [asyncio.create_task(unit()) for _ in range(2 * POSTGRES_POOL_SIZE)]
        try:
            await asyncio.wait_for(full.wait(), 10)  # a deadline, not a timing bound
            assert pool.checkedout() == POSTGRES_POOL_SIZE  # the others wait for one
        finally:
            gate.set()
            await asyncio.gather(*units)

    await burst()
    first = len(opened)
    await burst()
    assert len(opened) == first  # the second burst opened none
    assert pool.size() == POSTGRES_POOL_SIZE and pool.checkedin() == POSTGRES_POOL_SIZE
