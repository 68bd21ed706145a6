"""Attacks on `events replay` (issue 24) beside the relay's fence: what it holds while the broker confirms a
batch, and what it audits; each test failed on the code before its fix."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import aio_pika
import pytest
from sqlalchemy import select, text

from storage.db import Database
from storage.inbox import Fence, raise_epoch
from storage.models import AuditEvent
from storage.operator import acting_operator
from tests.conftest import POSTGRES_URL
from tests.hardening.test_attacks_24 import confirming, registered, write
from tests.hardening.test_attacks_24_fence import (
    BOT,
    DEADLINE,
    events_settings,
    full_crm_queue_delivers,
    schema_of,
    until_done,
)
from tests.kit.amqpkit import AMQP_URL, new_names, require_broker
from tests.ops.test_events_fence import second_process, take_over
from unogas_bot.cli import events as events_cli
from unogas_bot.cli.common import CliError
from unogas_bot.events.broker import Names
from unogas_bot.events.relay import Relay
from unogas_bot.service.context import Services

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


# --- the replay and a broker that nacks one event of a batch and takes the next -------------------------


async def test_a_replay_never_lets_an_accounts_event_overtake_its_nacked_earlier_one(
    database: Database,
) -> None:
    """The replay published its batch (500) all at once, as the relay did: a broker that nacked one event
    of an account and took the next delivered the account's sequence 3 without its 2 (still pending, never
    delivered before), which a consumer keeping the highest sequence then drops."""

    async def replay(services: Services, names: Names, exchange: aio_pika.abc.AbstractExchange) -> None:
        with acting_operator("anna"), pytest.raises(CliError, match="did not take"):
            await events_cli._replay(services, AMQP_URL, services.clock() - timedelta(days=1))

    services, delivered = await full_crm_queue_delivers(database, replay)
    assert delivered == [1], delivered
    services.hasher.close()
