"""Attacks on the relay's fence after the change that stopped holding the epoch across the publish (issue 24
with issue 20's epoch, PostgreSQL): each test failed on the code before its fix.

The old leader is a process of its own here: its own event loop in a thread, frozen as SIGSTOP freezes a
process (the whole loop blocked) right after one of its statements on the epoch's row returned, and thawed
once the test has seen what the standby can do meanwhile."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from storage.db import Database
from storage.inbox import Fence, Superseded, raise_epoch
from tests.conftest import POSTGRES_URL, FakeClock
from tests.hardening.test_attacks_24 import confirming, registered, write
from tests.kit.amqpkit import AMQP_URL, new_names, require_broker
from tests.kit.botkit import TEST_SETTINGS
from tests.ops.test_events_fence import HeldExchange, second_process, take_over
from unogas_bot.events.broker import Names, accounts_exchange
from unogas_bot.events.relay import Refused, Relay
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services

BOT = 7_700_124
DEADLINE = 30.0  # seconds: for a thread to reach its gate (never reached when the test passes)


def events_settings(names: Names, **extra: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(TEST_SETTINGS, amqp_url=AMQP_URL, events_name_prefix=names.prefix, **extra)


async def until_done(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await asyncio.wait_for(awaitable, DEADLINE)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class FrozenLeader:
    """The old leader's process (a thread with its own event loop and its own engine) running `step`, frozen
    right after the first statement of `step` that reads the epoch's row returned, until `thaw()`."""

    def __init__(self, schema: str, epoch: int, step: Callable[[Services], Awaitable[Any]]) -> None:
        self.schema = schema
        self.epoch = epoch
        self.step = step
        self.frozen = threading.Event()
        self._thaw = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _freeze(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "bot_leadership" in statement and not self.frozen.is_set():
            self.frozen.set()
            self._thaw.wait(DEADLINE)  # the whole loop stops here, as the process would under SIGSTOP

    async def _run(self) -> None:
        db = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": self.schema}})
        db.fence = Fence(BOT, self.epoch)
        event.listen(db.engine.sync_engine, "after_cursor_execute", self._freeze)
        services = Services.create(TEST_SETTINGS, db, clock=FakeClock())
        try:
            self.result = await self.step(services)
        finally:
            services.hasher.close()
            await db.dispose()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported to the test
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def thaw(self) -> None:
        self._thaw.set()

    async def join(self) -> None:
        await asyncio.to_thread(self._thread.join, DEADLINE)
        assert not self._thread.is_alive(), "the old leader did not finish"


async def schema_of(database: Database) -> str:
    async with database.read() as conn:
        return str((await conn.execute(text("SELECT current_schema()"))).scalar())


async def sent_at(database: Database, row: int) -> Any:
    async with database.read() as conn:
        return (
            await conn.execute(text("SELECT sent_at FROM outbox_events WHERE id = :r"), {"r": row})
        ).scalar()


async def takeover_while_frozen(database: Database, leader: FrozenLeader) -> int:
    leader.start()
    try:
        assert await asyncio.to_thread(leader.frozen.wait, DEADLINE), "the old leader never read its epoch"
        async with second_process(database) as standby:
            return await take_over(standby, BOT)  # refused after 2 s if the frozen leader holds the row
    finally:
        leader.thaw()
        await leader.join()


@pytest.mark.postgres
async def test_a_leader_frozen_right_after_its_epoch_check_does_not_hold_the_takeover(
    database: Database,
) -> None:
    """check_epoch read the epoch FOR SHARE in a transaction of its own: a leader frozen between that read
    and its COMMIT (one round trip, at every batch) held the row, and the standby's raise waited for the
    server to end the idle transaction (10 s): LockNotAvailable under the takeover's 2 s lock timeout."""
    if database.dialect != "postgresql":
        pytest.skip("the epoch fence is PostgreSQL's (SQLite: one process per file)")
    epoch = await raise_epoch(database, BOT)
    leader = FrozenLeader(await schema_of(database), epoch, use_cases.check_epoch)
    assert await takeover_while_frozen(database, leader) == epoch + 1
    # It had read its own epoch before the takeover: it may publish the batch in flight, nothing more.
    assert leader.error is None


@pytest.mark.postgres
async def test_a_leader_frozen_while_it_marks_a_batch_sent_does_not_hold_the_takeover(
    database: Database,
) -> None:
    """mark_sent checked the epoch FOR SHARE, then updated the rows, then committed: a leader frozen after
    the check held the row until the server ended its idle transaction (10 s), and the standby's raise
    waited that long. Whatever the freeze, the mark either committed before the takeover or marks nothing."""
    if database.dialect != "postgresql":
        pytest.skip("the epoch fence is PostgreSQL's (SQLite: one process per file)")
    services = Services.create(TEST_SETTINGS, database, clock=FakeClock())
    await registered(services, 1, start=7900)
    (pending,) = await use_cases.list_events(services, pending_only=True)
    epoch = await raise_epoch(database, BOT)

    async def mark(old: Services) -> None:
        await use_cases.mark_sent(old, [pending.row])

    leader = FrozenLeader(await schema_of(database), epoch, mark)
    assert await takeover_while_frozen(database, leader) == epoch + 1
    if leader.error is None:  # committed at once, before the takeover: it was the leader then
        assert await sent_at(database, pending.row) is not None
    else:
        assert isinstance(leader.error, Superseded), leader.error
        assert await sent_at(database, pending.row) is None
    services.hasher.close()


# --- the database cut between a publish and its mark ----------------------------------------------------


class CutAfterFirstPublish:
    """The accounts exchange; the database path is cut once the broker confirmed the first batch."""

    def __init__(self, exchange: aio_pika.abc.AbstractExchange, cut: list[bool]) -> None:
        self.exchange = exchange
        self.cut = cut

    async def publish(self, message: aio_pika.Message, routing_key: str, **options: Any) -> Any:
        confirmed = await self.exchange.publish(message, routing_key=routing_key, **options)
        self.cut[0] = True
        return confirmed


async def test_a_database_cut_between_publish_and_mark_leaves_no_stray_task_and_loses_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay reads the next batch while it publishes one and marks the last: when the mark failed (the
    database cut), the read already under way was left behind, and its own failure came out later as
    asyncio's "Task exception was never retrieved", with a traceback, beside the relay's one line."""
    await require_broker()
    names = new_names()
    services = Services.create(events_settings(names, events_batch=1), database)
    await registered(services, 3, start=7970)
    cut = [False]
    real_pending, real_mark = use_cases.pending_events, use_cases.mark_sent

    def gone() -> OperationalError:
        return OperationalError("SELECT", {}, OSError("the database path was cut"))

    async def pending(services: Services, limit: int, after: int = 0, in_flight=()):  # type: ignore[no-untyped-def]
        if cut[0]:
            raise gone()
        return await real_pending(services, limit, after, in_flight)

    async def mark(services: Services, rows):  # type: ignore[no-untyped-def]
        if cut[0]:
            raise gone()
        return await real_mark(services, rows)

    monkeypatch.setattr(use_cases, "pending_events", pending)
    monkeypatch.setattr(use_cases, "mark_sent", mark)
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with confirming(names) as (exchange, tap):
        relay = Relay(services, AMQP_URL, names)
        failed = False
        try:
            await relay.drain_once(CutAfterFirstPublish(exchange, cut))  # type: ignore[arg-type]
        except OperationalError:
            failed = True
        assert failed
        await asyncio.sleep(0)  # let whatever the pass left behind finish
        gc.collect()
        cut[0] = False  # the database is back: everything goes out, in order, none lost
        while await relay.drain_once(exchange):
            pass
        assert await use_cases.list_events(services, pending_only=True) == []
        events = await use_cases.list_events(services)
        await tap.wait_for(len(events))
    stray = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert stray == []
    first = list(dict.fromkeys(tap.ids()))
    assert first == [e.event_id for e in events]
    services.hasher.close()


# --- a broker that refuses one event of a batch (nack) and takes the next -------------------------------


async def full_crm_queue_delivers(
    database: Database, step: Callable[[Services, Names, aio_pika.abc.AbstractExchange], Awaitable[Any]]
) -> tuple[Services, list[int]]:
    """An account's registration, e-mail change (the largest event) and phone change, pending; `step` then
    publishes them to a CRM queue with room for the registration and the phone change, not for the e-mail
    change after the registration (`x-overflow: reject-publish`: the broker nacks it, takes the next). The
    sequences the CRM's queue holds afterwards."""
    await require_broker()
    names = new_names()
    services = Services.create(events_settings(names), database, clock=FakeClock())
    (a,) = await registered(services, 1, start=8300)
    async with database.transaction() as session:  # a long address: its email_changed is the largest event
        long_email = "x" * 200 + "@example.it"
        await session.execute(text("UPDATE accounts SET email = :e WHERE id = :a"), {"e": long_email, "a": a})
    await write(services, "email_changed", a)
    await write(services, "phone_changed", a)
    sizes = [len(event.payload.encode()) for event in await use_cases.list_events(services)]
    assert sizes[1] > sizes[2]
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names.accounts, aio_pika.ExchangeType.TOPIC, durable=True)
        limits = {"x-max-length-bytes": sizes[0] + sizes[2] + 5, "x-overflow": "reject-publish"}
        crm = await channel.declare_queue(f"{names.prefix}crm", arguments=limits)
        await crm.bind(exchange, "#")
        relay_channel = await connection.channel(publisher_confirms=True)
        await step(services, names, await accounts_exchange(relay_channel, names))
        delivered = []
        while (message := await crm.get(fail=False, no_ack=True)) is not None:
            delivered.append(json.loads(message.body)["sequence"])
        await crm.delete(if_unused=False, if_empty=False)
        await exchange.delete()
    finally:
        await connection.close()
    return services, delivered


async def test_a_nacked_event_is_never_overtaken_by_the_accounts_next_in_the_same_batch(
    database: Database,
) -> None:
    """The relay publishes a batch all at once and awaits the confirmations together. A broker that nacks
    one event and takes the next (the CRM's queue full, `x-overflow: reject-publish`, with room for a
    smaller event) delivered an account's sequence 3 without its 2; the 2 came after the retry, and a
    consumer keeping the highest sequence per subject (docs/events.md) dropped it: the e-mail change lost."""

    async def relay(services: Services, names: Names, exchange: aio_pika.abc.AbstractExchange) -> None:
        # A nack, said as such: not "lost the broker".
        with pytest.raises(Refused, match=r"refused it\.unogas\.account\.email_changed"):
            await Relay(services, AMQP_URL, names).drain_once(exchange)

    services, delivered = await full_crm_queue_delivers(database, relay)
    assert delivered == [1], delivered
    pending = [event.sequence for event in await use_cases.list_events(services, pending_only=True)]
    assert pending == [2, 3]
    services.hasher.close()


# --- held: two leaders superseded in turn, both waking up --------------------------------------------


@pytest.mark.postgres
async def test_two_superseded_leaders_waking_up_mark_nothing_and_publish_only_their_batch(
    database: Database,
) -> None:
    """A leader frozen mid-publish is superseded; the new leader, frozen mid-publish too, is superseded in
    turn; both wake up. Each publishes at most the batch it had in flight, marks nothing and stops; the
    third publishes everything. (An attack that held: the check is for equality with the current epoch.)"""
    if database.dialect != "postgresql":
        pytest.skip("the epoch fence is PostgreSQL's (SQLite: one process per file)")
    names = new_names()
    first = Services.create(events_settings(names, events_batch=2), database, clock=FakeClock())
    await registered(first, 3, start=8100)
    database.fence = Fence(BOT, await raise_epoch(database, BOT))
    async with (
        confirming(names) as (exchange, tap),
        second_process(database) as db2,
        second_process(database) as db3,
    ):
        held = [HeldExchange(exchange), HeldExchange(exchange)]
        frozen = [asyncio.ensure_future(Relay(first, AMQP_URL, names).drain_once(held[0]))]  # type: ignore[arg-type]
        await until_done(held[0].entered.wait(), "the first leader's publish")
        db2.fence = Fence(BOT, await take_over(db2, BOT))
        second = Services.create(events_settings(names, events_batch=2), db2, clock=FakeClock())
        frozen.append(asyncio.ensure_future(Relay(second, AMQP_URL, names).drain_once(held[1])))  # type: ignore[arg-type]
        await until_done(held[1].entered.wait(), "the second leader's publish")
        db3.fence = Fence(BOT, await take_over(db3, BOT))
        third = Services.create(events_settings(names), db3, clock=FakeClock())
        for exchange_held in held:
            exchange_held.gate.set()
        woken = await asyncio.gather(*frozen, return_exceptions=True)
        assert [type(result) for result in woken] == [Superseded, Superseded], woken
        assert len(await use_cases.list_events(third, pending_only=True)) == 3  # neither marked anything
        assert await Relay(third, AMQP_URL, names).drain_once(exchange) == 3
        await tap.wait_for(2 + 2 + 3)
    assert {event["subject"] for event in tap.received[:4]} <= {"1", "2"}  # the batches in flight only
    database.fence = None
    for services in (first, second, third):
        services.hasher.close()
