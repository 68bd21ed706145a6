"""Attacks on the relay's fence after the change that stopped holding the epoch across the publish (issue 24
with issue 20's epoch, PostgreSQL): each test failed on the code before its fix.

The old leader is a process of its own here: its own event loop in a thread, frozen as SIGSTOP freezes a
process (the whole loop blocked) right after one of its statements on the epoch's row returned, and thawed
once the test has seen what the standby can do meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from storage.db import Database
from storage.inbox import Fence, Superseded, raise_epoch
from storage.models import AuditEvent
from storage.operator import acting_operator
from tests.conftest import POSTGRES_URL, FakeClock
from tests.hardening.test_attacks_24 import confirming, registered, write
from tests.kit.amqpkit import AMQP_URL, new_names, require_broker
from tests.kit.botkit import TEST_SETTINGS
from tests.ops.test_events_fence import second_process, take_over
from unogas_bot.cli import events as events_cli
from unogas_bot.cli.common import CliError
from unogas_bot.events.broker import Names
from unogas_bot.events.relay import Relay
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services

BOT = 7_700_124
DEADLINE = 30.0  # seconds: for a thread to reach its gate (never reached when the test passes)


def events_settings(names: Names, **extra: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(TEST_SETTINGS, amqp_url=AMQP_URL, events_name_prefix=names.prefix, **extra)


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


# --- the replay: what it published is audited, also when the broker stopped it halfway ------------------


async def audited_replays(database: Database) -> list[str]:
    async with database.session() as session:
        query = select(AuditEvent.detail).where(AuditEvent.event == "events_replayed")
        return [str(detail) for detail in (await session.execute(query)).scalars()]


async def test_a_replay_the_broker_stops_halfway_is_audited_for_what_it_published(database: Database) -> None:
    """`events replay` audited the operator only when every event went through: a broker that took the first
    events and then refused one (no queue for its type, a lost connection) left events published again by
    someone no audit trail names."""
    await require_broker()
    names = new_names()
    services = Services.create(events_settings(names), database)
    a, _ = await registered(services, 2, start=7950)
    await write(services, "email_changed", a)  # no queue takes it: the broker returns it
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names.accounts, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{names.prefix}tap", auto_delete=True)
        await queue.bind(exchange, "it.unogas.account.registered")  # the CRM takes registrations only
        with acting_operator("anna"), pytest.raises(CliError, match="2 event"):
            await events_cli._replay(services, AMQP_URL, services.clock() - timedelta(days=1))
        await channel.queue_delete(queue.name)
        await channel.exchange_delete(names.accounts)
    finally:
        await connection.close()
    (detail,) = await audited_replays(database)
    assert detail.startswith("2 event(s)") and detail.endswith("operator anna"), detail
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


# --- a replay under way must not hold the relay's mark, and through it the takeover, back ---------------

MARK_WAITING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock' AND query LIKE '%outbox_events%'"
)


@pytest.mark.postgres
async def test_a_replay_under_way_holds_neither_the_relays_mark_nor_the_takeover(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay holds each batch's rows FOR SHARE while the broker confirms it (so an erasure waits for
    it). That lock also kept the leader's relay from marking the same events sent (an UPDATE), and the
    mark, which holds the epoch FOR SHARE, kept the standby's raise waiting behind it: a support replay on
    a slow broker delayed a takeover by up to the idle timeout (10 s)."""
    if database.dialect != "postgresql":
        pytest.skip("the epoch fence is PostgreSQL's (SQLite: one process per file)")
    await require_broker()
    names = new_names()
    services = Services.create(events_settings(names), database)
    await registered(services, 1, start=7990)
    database.fence = Fence(BOT, await raise_epoch(database, BOT))
    entered, gate = asyncio.Event(), asyncio.Event()
    real_publish = events_cli.publish

    async def slow_broker(exchange, batch, share=False):  # type: ignore[no-untyped-def]
        entered.set()
        await gate.wait()
        return await real_publish(exchange, batch, share)

    monkeypatch.setattr(events_cli, "publish", slow_broker)
    async with confirming(names) as (exchange, _), second_process(database) as cli_db:
        cli = Services.create(events_settings(names), cli_db)  # the support CLI: a process of its own
        replay = asyncio.ensure_future(events_cli._replay(cli, AMQP_URL, cli.clock() - timedelta(days=1)))
        relaying = None
        try:
            await until_done(entered.wait(), "the replay's publish")
            relaying = asyncio.ensure_future(Relay(services, AMQP_URL, names).drain_once(exchange))

            async def mark_waits() -> bool:
                async with database.read() as conn:
                    return bool((await conn.execute(text(MARK_WAITING))).scalar())

            loop = asyncio.get_running_loop()
            end = loop.time() + DEADLINE
            while not relaying.done() and not await mark_waits():
                assert loop.time() < end, "the relay neither finished nor waited"
                await asyncio.sleep(0.02)
            async with second_process(database) as standby:
                assert await take_over(standby, BOT) > database.fence.epoch
        finally:
            gate.set()
            await asyncio.gather(replay, *([relaying] if relaying else []), return_exceptions=True)
        cli.hasher.close()
    database.fence = None
    services.hasher.close()


async def until_done(awaitable: Awaitable[Any], what: str) -> None:
    try:
        await asyncio.wait_for(awaitable, DEADLINE)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# --- a replay whose broker confirms more slowly than the database's idle limit --------------------------


async def test_a_replay_outlasting_the_idle_limit_on_a_slow_broker_still_completes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay holds each batch's transaction open while the broker confirms it; a broker slower than
    the database's idle limit (idle_in_transaction_session_timeout, 10 s; the relay waits up to 60 s for a
    confirmation) had the server end the replay's session: the confirmed events were out, yet the replay
    failed with "database error: connection is closed", and failed again at every try."""
    if database.dialect != "postgresql":
        pytest.skip("the idle limit is PostgreSQL's")
    await require_broker()
    names = new_names()
    services = Services.create(events_settings(names), database)
    await registered(services, 1, start=7996)
    schema = await schema_of(database)
    cli_db = Database(
        POSTGRES_URL, statement_timeout=1.0, connect_args={"server_settings": {"search_path": schema}}
    )
    real_publish = events_cli.publish

    async def slower_than_the_idle_limit(exchange, batch, share=False):  # type: ignore[no-untyped-def]
        # A transaction opened now, with the replay's limits, and left idle: once the server has ended
        # it, the replay's (idle since before) has outlasted the limit too.
        async with cli_db.engine.connect() as canary:
            pid = (await canary.execute(text("SELECT pg_backend_pid()"))).scalar()
            loop = asyncio.get_running_loop()
            end = loop.time() + DEADLINE
            while True:
                async with database.read() as conn:
                    query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
                    if not (await conn.execute(query, {"pid": pid})).scalar():
                        break
                assert loop.time() < end, "the server never ended the idle transaction"
                await asyncio.sleep(0.05)
            with contextlib.suppress(Exception):
                await canary.rollback()
        return await real_publish(exchange, batch, share)

    monkeypatch.setattr(events_cli, "publish", slower_than_the_idle_limit)
    try:
        async with confirming(names) as (_, tap):
            cli = Services.create(events_settings(names), cli_db)
            with acting_operator("anna"):
                count = await events_cli._replay(cli, AMQP_URL, cli.clock() - timedelta(days=1))
            cli.hasher.close()
            await tap.wait_for(1)
    finally:
        await cli_db.dispose()
    assert count == 1
    (detail,) = await audited_replays(database)
    assert detail.startswith("1 event(s)"), detail
    services.hasher.close()


# --- SQLite: a replay on a broker that does not confirm must not hold the customers' writes back --------


async def test_a_replay_on_sqlite_with_a_broker_that_does_not_confirm_never_refuses_the_customers(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the replay's batch transaction is the file's write lock, held while the broker confirms
    (a RabbitMQ that blocks publishers on a memory alarm: up to the 60 s publish timeout; a replay
    suspended with Ctrl-Z: for ever). The bot's customers, another process on the file, waited their busy
    timeout (10 s) and were refused: "service unavailable" for a support command."""
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL's replay locks only its batch's rows (the erasures of its accounts wait)")
    await require_broker()
    names = new_names()
    cli = Services.create(events_settings(names), database)  # the support CLI
    await registered(cli, 1, start=7997)
    entered, gate = asyncio.Event(), asyncio.Event()
    real_publish = events_cli.publish

    async def blocked_broker(exchange, batch, share=False):  # type: ignore[no-untyped-def]
        entered.set()
        await gate.wait()
        return await real_publish(exchange, batch, share)

    monkeypatch.setattr(events_cli, "publish", blocked_broker)
    bot_db = Database(str(database.engine.url))  # the bot: another process on the same file
    bot = Services.create(events_settings(names), bot_db)
    try:
        async with confirming(names):
            replay = asyncio.ensure_future(events_cli._replay(cli, AMQP_URL, cli.clock() - timedelta(days=1)))
            try:
                await until_done(entered.wait(), "the replay's publish")
                # A customer registers while the broker sits on the replay's batch.
                (account,) = await registered(bot, 1, start=7998)
                assert account > 0
            finally:
                gate.set()
                await asyncio.gather(replay, return_exceptions=True)
    finally:
        bot.hasher.close()
        await bot_db.dispose()
    cli.hasher.close()
