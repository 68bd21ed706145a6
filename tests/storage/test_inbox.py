"""The update inbox's storage, the leadership epoch and the steps claimed per update (storage/inbox.py), on
SQLite and PostgreSQL; the epoch's fencing on PostgreSQL, with a second "process" on the same schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from storage.db import Database
from storage.inbox import HANDLING, Arrived, Fence, Handling, InboxStore, Superseded, raise_epoch
from storage.models import AuditEvent, BotInbox, BotUserData
from storage.persistence import SqlPersistence
from storage.unit_of_work import UnitOfWork
from tests.conftest import POSTGRES_URL, FakeClock

BOT = 4242


def _arrived(*ids: int) -> list[Arrived]:
    return [Arrived(i, 100 + i, f"sealed {i}".encode()) for i in ids]


async def _rows(db: Database) -> dict[int, tuple[object, ...]]:
    table = BotInbox.__table__
    async with db.read() as conn:
        result = await conn.execute(
            select(table.c.update_id, table.c.handled_at, table.c.payload, table.c.applied)
        )
        return {int(row[0]): tuple(row[1:]) for row in result}


async def test_an_update_is_taken_once_and_its_tombstone_goes_once_telegram_confirmed_it(
    database: Database, clock: FakeClock
) -> None:
    store = InboxStore(database, BOT, clock=clock)
    assert await store.admit([]) == set()
    assert await store.admit(_arrived(1, 2)) == {1, 2}
    assert await store.admit(_arrived(2, 3)) == {3}, "delivered again: taken already"
    assert await InboxStore(database, BOT + 1, clock=clock).admit(_arrived(2)) == {2}, "another bot's ids"
    async with database.transaction() as session:
        await store.mark_handled(await session.connection(), [1, 2], clock())
    rows = await _rows(database)
    assert rows[1][0] is not None and rows[1][1] is None, "handled: the payload is gone"
    assert rows[3][0] is None and bytes(rows[3][1]) == b"sealed 3"
    assert await store.admit(_arrived(1)) == set(), "a handled update delivered again is not new"
    assert await store.counts() == (1, 2)
    assert await store.admit(_arrived(4), confirmed_below=3) == {4}
    assert await store.counts() == (2, 0), "Telegram confirmed 1 and 2: their tombstones went"


async def test_a_new_leader_finds_the_waiting_updates_oldest_first(
    database: Database, clock: FakeClock
) -> None:
    store = InboxStore(database, BOT, clock=clock)
    await store.admit(_arrived(9, 3, 5))
    async with database.transaction() as session:
        await store.mark_handled(await session.connection(), [5], clock())
    first = await store.waiting()
    assert [(w.update_id, w.payload, w.replays) for w in first] == [(3, b"sealed 3", 0), (9, b"sealed 9", 0)]
    assert [w.replays for w in await store.waiting()] == [0, 0], "reading the inbox counts nothing"
    await store.started(3)
    assert [w.replays for w in await store.waiting()] == [1, 0], "a leader that starts one counts"
    await store.set_aside([3])
    assert [w.update_id for w in await store.waiting()] == [9]


async def test_housekeeping_prunes_old_tombstones_and_rows_nobody_handled(
    database: Database, clock: FakeClock
) -> None:
    store = InboxStore(database, BOT, clock=clock)
    await store.admit(_arrived(1, 2))
    async with database.transaction() as session:
        await store.mark_handled(await session.connection(), [1], clock())
    clock.advance(hours=2)
    await store.admit(_arrived(3))
    assert await store.prune(timedelta(hours=1), timedelta(days=1)) == (1, 0)
    clock.advance(days=1)
    assert await store.prune(timedelta(hours=1), timedelta(days=1)) == (0, 1)
    assert await store.counts() == (1, 0), "update 3 arrived a day minus two hours ago"


async def _audit_events(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(AuditEvent))).scalar() or 0)


async def _step(db: Database, clock: FakeClock, event: str) -> None:
    """A use case's unit of work that writes one audit event."""
    async with UnitOfWork(db, clock) as uow:
        await uow.accounts.add_event(event, telegram_user_id=1)
        await uow.commit()


async def test_a_step_committed_by_an_earlier_handling_of_the_update_is_not_committed_again(
    database: Database, clock: FakeClock
) -> None:
    store = InboxStore(database, BOT, clock=clock)
    await store.admit(_arrived(7))
    first = HANDLING.set(Handling(BOT, 7))
    try:
        await _step(database, clock, "first_step")
        await _step(database, clock, "second_step")
    finally:
        HANDLING.reset(first)
    assert (await _rows(database))[7][2] == 2 and await _audit_events(database) == 2

    again = Handling(BOT, 7)  # the same update, handled again after a crash
    token = HANDLING.set(again)
    try:
        await _step(database, clock, "first_step")
        async with UnitOfWork(database, clock) as uow:
            assert await uow.applied_before(), "the second step was done before"
        await _step(database, clock, "third_step")  # new: the first handling never got this far
    finally:
        HANDLING.reset(token)
    assert again.claimed == 3
    assert await _audit_events(database) == 3, "only the step the first handling did not commit"
    assert (await _rows(database))[7][2] == 3

    outside = HANDLING.set(Handling(BOT, 999))  # not an inbox update: nothing to compare with
    try:
        await _step(database, clock, "elsewhere")
        async with UnitOfWork(database, clock) as uow:
            assert not await uow.applied_before()
    finally:
        HANDLING.reset(outside)
    assert await _audit_events(database) == 4


async def test_a_unit_of_work_that_fails_does_not_take_its_step(database: Database, clock: FakeClock) -> None:
    store = InboxStore(database, BOT, clock=clock)
    await store.admit(_arrived(8))
    handling = Handling(BOT, 8)
    token = HANDLING.set(handling)
    try:
        with pytest.raises(RuntimeError):
            async with UnitOfWork(database, clock) as uow:
                await uow.accounts.add_event("rolled_back", telegram_user_id=1)
                raise RuntimeError("before the commit")
        await _step(database, clock, "kept")
    finally:
        HANDLING.reset(token)
    assert handling.claimed == 1 and await _audit_events(database) == 1


# --- the epoch (PostgreSQL) -----------------------------------------------------------------------------


@asynccontextmanager
async def _second_process(db: Database) -> AsyncIterator[Database]:
    """Another Database on the same schema, as another `run` process would have."""
    async with db.read() as conn:
        schema = (await conn.execute(text("SELECT current_schema()"))).scalar()
    other = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": str(schema)}})
    try:
        yield other
    finally:
        await other.dispose()


async def _raise_epoch(db: Database) -> int:
    return await raise_epoch(db, BOT)


@pytest.mark.postgres
async def test_every_write_of_a_superseded_leader_rolls_back(database: Database, clock: FakeClock) -> None:
    if database.dialect != "postgresql":
        pytest.skip("the epoch is PostgreSQL's (on SQLite one process holds the file's lock)")
    store = InboxStore(database, BOT, clock=clock)
    await store.admit(_arrived(1))
    database.fence = Fence(BOT, await _raise_epoch(database))
    persistence = SqlPersistence(database, clock=clock)
    persistence.inbox = store
    await _step(database, clock, "while_leading")
    async with _second_process(database) as newer:
        assert await _raise_epoch(newer) == database.fence.epoch + 1  # another process took over
    with pytest.raises(Superseded):
        await _step(database, clock, "after_the_takeover")
    await persistence.update_user_data(5, {"lang": "en"})
    persistence.note_handled([1])
    with pytest.raises(Superseded):
        await persistence.save()
    with pytest.raises(Superseded):
        await store.admit(_arrived(2))
    async with database.read() as conn:
        users = (await conn.execute(select(func.count()).select_from(BotUserData))).scalar()
    assert await _audit_events(database) == 1 and users == 0
    rows = await _rows(database)
    assert set(rows) == {1} and rows[1][0] is None, "update 1 waits for the new leader"


@pytest.mark.postgres
async def test_the_new_epoch_waits_for_the_old_leaders_open_transaction(database: Database) -> None:
    """A transaction that checked the epoch commits before the takeover, or not at all: never after."""
    if database.dialect != "postgresql":
        pytest.skip("the epoch is PostgreSQL's")
    database.fence = Fence(BOT, await _raise_epoch(database))
    async with _second_process(database) as newer:
        async with database.transaction() as session:
            await database.fence.check(session)
            raising = asyncio.ensure_future(_raise_epoch(newer))
            await asyncio.sleep(0.3)
            assert not raising.done(), "the takeover waits for the transaction in progress"
            await session.execute(text("SELECT 1"))
        assert await asyncio.wait_for(raising, 5) == database.fence.epoch + 1
