"""Attacks on issue 24's paths (the outbox, the relay, the customer-event consumer, the events CLI), each
a test that failed on the code before its fix. Against the real RabbitMQ at AMQP_URL (skipped, saying why,
when none answers), each test with names of its own (EVENTS_NAME_PREFIX), deleted at the end."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aio_pika
import pytest
from yarl import URL

from storage.db import Database
from storage.inbox import Fence, raise_epoch
from storage.outbox import Outbox
from tests.conftest import FakeClock
from tests.kit.amqpkit import AMQP_URL, Tap, broker, new_names, require_broker
from tests.kit.botkit import TEST_SETTINGS
from tests.kit.stores import stores
from tests.ops.test_events_inbound import cloudevent, columns, consumed, start, stop
from tests.ops.test_events_relay import new_account
from unogas_bot.bench.data import person_records
from unogas_bot.cli import events as events_cli
from unogas_bot.cli.common import CliError
from unogas_bot.config import ConfigError, Settings
from unogas_bot.events.broker import BrokerUnreachable, Names, accounts_exchange, connect
from unogas_bot.events.relay import Relay
from unogas_bot.service import erasure, registration
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import Erased, Registered


def settings(names: Names, **extra: object):  # type: ignore[no-untyped-def]
    return dataclasses.replace(TEST_SETTINGS, amqp_url=AMQP_URL, events_name_prefix=names.prefix, **extra)


async def until(condition: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def registered(services: Services, count: int, start: int) -> list[int]:
    records = person_records(count, start=start)
    await stores(services).registry.upsert_many(records)
    ids = []
    for index, record in enumerate(records):
        outcome = await registration.register(services, new_account(record, start + index))
        assert isinstance(outcome, Registered), outcome
        ids.append(outcome.account.id)
    return ids


async def write(services: Services, kind: str, account_id: int) -> None:
    async with services.db.transaction() as session:
        await Outbox(session, services.clock).record(kind, account_id)


@asynccontextmanager
async def confirming(names: Names) -> AsyncIterator[tuple[aio_pika.abc.AbstractExchange, Tap]]:
    """The accounts exchange on a channel with publisher confirms (as the relay's), and a tap on it."""
    async with broker(names) as (_, tap):
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel(publisher_confirms=True)
            yield await accounts_exchange(channel, names), tap
        finally:
            await connection.close()


def first_arrivals(received: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per account, the sequences in the order of their first delivery (a repetition is not counted): what a
    consumer keeping the highest sequence per subject applies."""
    seen: dict[str, list[int]] = defaultdict(list)
    for event in received:
        if event["sequence"] not in seen[event["subject"]]:
            seen[event["subject"]].append(event["sequence"])
    return seen


# --- 1. the relay's cursor skipped an event that committed late, then published the account's next -------


@pytest.mark.postgres
async def test_an_event_that_commits_late_is_never_overtaken_by_the_accounts_next(database: Database) -> None:
    """On PostgreSQL an outbox row's number is taken at its INSERT, not at the commit: a change of account
    A that commits late has a lower number than B's change that committed first and was published. The
    relay's cursor (after B's row) skipped A's late event and published A's next change before it."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite numbers the rows in commit order (one writer at a time)")
    names = new_names()
    services = Services.create(settings(names), database)
    a, b = await registered(services, 2, start=7000)
    relay = Relay(services, AMQP_URL, names)
    async with confirming(names) as (exchange, tap):
        assert await relay.drain_once(exchange) == 2  # both registrations
        async with services.db.transaction() as session:  # A's change, committing late
            await Outbox(session, services.clock).record("email_changed", a)
            await write(services, "email_changed", b)  # B's, committed first
            assert await relay.drain_once(exchange) == 1
        await write(services, "phone_changed", a)  # A's next change
        for _ in range(3):
            await relay.drain_once(exchange)
        await tap.wait_for(5)
    assert first_arrivals(tap.received)[str(a)] == [1, 2, 3]
    services.hasher.close()


# --- 2. the replay published an account's newer event while an older one was still pending --------------


async def test_a_replay_never_publishes_an_accounts_event_before_its_pending_older_one(
    database: Database,
) -> None:
    """`events replay --since T` published (and marked sent) what was written since T; an older event of
    the same account, still pending (the broker was down), went out after it, and a consumer keeping the
    highest sequence (docs/events.md's sample) dropped it as a repetition."""
    names = new_names()
    clock = FakeClock()
    services = Services.create(settings(names), database, clock=clock)
    (a,) = await registered(services, 1, start=7100)
    relay = Relay(services, AMQP_URL, names)
    async with confirming(names) as (exchange, tap):
        assert await relay.drain_once(exchange) == 1
        await write(services, "email_changed", a)  # pending: the broker is "down"
        since = clock.advance(minutes=10)
        await write(services, "phone_changed", a)
        await events_cli._replay(services, AMQP_URL, since)
        await relay.drain_once(exchange)  # the relay, back, sends what is pending
        await tap.wait_for(3)
        await asyncio.sleep(0.2)  # a late delivery would land now
    assert first_arrivals(tap.received)[str(a)] == [1, 2, 3]
    assert await use_cases.list_events(services, pending_only=True) == []
    services.hasher.close()


# --- 3. a fenced leader's relay went on publishing ------------------------------------------------------


@pytest.mark.postgres
async def test_a_fenced_leaders_relay_publishes_nothing_and_stops_with_one_line(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A leader whose epoch a newer leader raised (a frozen process waking up) may write nothing: its
    transactions roll back. Its relay published the outbox anyway (the publish is not a write), failed to
    mark it (the fence), logged a traceback and published it again at every retry, events the new leader
    publishes too, and stale ones after an erasure the new leader published."""
    if database.dialect != "postgresql":
        pytest.skip("the epoch fence is PostgreSQL's (SQLite: one process per file)")
    names = new_names()
    services = Services.create(settings(names, events_backoff_max=0.1), database)
    await registered(services, 1, start=7200)
    bot = 7_200_024
    database.fence = Fence(bot, await raise_epoch(database, bot))
    await raise_epoch(database, bot)  # a standby took over
    caplog.set_level(logging.INFO, logger="unogas_bot.events.relay")
    async with broker(names) as (_, tap):
        relay = Relay(services, AMQP_URL, names)
        task = asyncio.ensure_future(relay.run())
        try:
            await until(lambda: task.done() or len(tap.received) >= 2, "the relay to stop")
        finally:
            relay.stop()
            await asyncio.wait_for(task, 20)
    assert tap.received == []
    relay_log = [r for r in caplog.records if r.name == "unogas_bot.events.relay"]
    lines = [r for r in relay_log if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert "newer leader" in lines[0].getMessage()
    database.fence = None
    services.hasher.close()


# --- 4. poison the consumer did not expect: a dead consumer, a redelivery loop -------------------------


async def test_poison_sequence_and_id_are_dead_lettered_and_the_consumer_goes_on(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A sequence of digits int() does not take ("²": str.isdigit says yes) raised ValueError out of the
    consumer: its task died, silently, and no customer event was applied any more. An id with a NUL
    character passed the checks and PostgreSQL refused it: taken for a database failure, the message went
    back to the queue every second, forever. JSON nested 100,000 deep raised RecursionError: the consumer
    reconnected and got it again, forever. And the CRM's message id went into the log line as it was: a
    line break in it forged a log line."""
    names = new_names()
    services = Services.create(settings(names), database)
    first, second = person_records(2, start=7300)
    body = json.loads(cloudevent("upserted", 1, columns(first)))
    poison = [
        json.dumps(body | {"sequence": "²"}).encode(),
        json.dumps(body | {"id": "crm-\u0000-1"}).encode(),
        json.dumps(body | {"data": columns(first) | {"first_name": ["Mario"]}}).encode(),
        b"[" * 100_000,  # json.loads raises RecursionError, not ValueError
    ]
    good = cloudevent("upserted", 1, columns(second))
    caplog.set_level(logging.WARNING, logger="unogas_bot.events.inbound")
    async with broker(names) as (channel, _):
        consumer = await start(services, names, channel)
        exchange = await channel.get_exchange(names.customers)
        for body in [*poison, good]:
            # The CRM's message id, as the log line shows it: a line break would forge a line of its own.
            forged = "crm-1\nCRITICAL unogas_bot: forged" if body == poison[0] else None
            message = aio_pika.Message(body, message_id=forged)
            await exchange.publish(message, routing_key="it.unogas.customer.upserted")
        await consumed(consumer, len(poison) + 1, deadline=10)
        assert consumer.stats.state == "connected"
        await stop(consumer)
    assert consumer.stats.outcomes["dead_lettered"] == len(poison)
    assert consumer.stats.outcomes["applied"] == 1
    assert await stores(services).registry.get(second.customer_code) is not None
    assert await stores(services).registry.get(first.customer_code) is None
    lines = [r.getMessage() for r in caplog.records if r.name == "unogas_bot.events.inbound"]
    assert len(lines) == len(poison), lines
    assert not any("\n" in line for line in lines), lines
    services.hasher.close()


# --- 5. a careless operator: a port out of range, a virtual host that is not there -----------------------


@pytest.mark.parametrize("port", ["99999", "notaport", "0"])
def test_an_amqp_url_with_a_bad_port_is_one_configuration_line(port: str) -> None:
    """AMQP_URL passed the check with any port: every connection (the relay's, the consumer's, each events
    command's and config check's own) then raised ValueError from the URL parser, a traceback each time."""
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"AMQP_URL": f"amqp://crm:s3cretPW@rabbitmq.internal:{port}/"})
    assert str(refused.value).startswith("AMQP_URL must name a host and a port")
    assert "s3cretPW" not in str(refused.value)


async def test_a_virtual_host_that_is_not_there_is_one_line_that_says_so() -> None:
    """RabbitMQ answers a wrong virtual host by closing the connection; the line said "InvalidFrameError:
    Expected one of ['Connection.OpenOk'], got <Connection.Close object at 0x7f...>"."""
    await require_broker()
    url = str(URL(AMQP_URL).with_path(f"/no-such-vhost-{secrets.token_hex(3)}"))
    with pytest.raises(BrokerUnreachable) as refused:
        await connect(url, 5)
    line = str(refused.value)
    assert "(AMQP_URL)" in line and "virtual host" in line and "0x" not in line, line
    password = URL(AMQP_URL).password
    assert not password or password not in line


# --- 6. hashes written while sharing was on, published after it was turned off ---------------------------


async def test_hashes_written_while_shared_are_not_published_once_sharing_is_off(database: Database) -> None:
    """The payload is stored when the change commits: with EVENTS_SHARE_CREDENTIALS turned off afterwards
    (the operator read the risk), the relay and the replay still published the hashes of the events
    written before, pending or sent."""
    names = new_names()
    sharing = Services.create(settings(names, events_share_credentials=True), database)
    (a,) = await registered(sharing, 1, start=7400)
    sharing.hasher.close()
    services = Services.create(settings(names), database)  # sharing off from now on
    relay = Relay(services, AMQP_URL, names)
    async with confirming(names) as (exchange, tap):
        assert await relay.drain_once(exchange) == 1
        await events_cli._replay(services, AMQP_URL, services.clock() - timedelta(days=1))
        await tap.wait_for(2)
    assert [event["subject"] for event in tap.received] == [str(a), str(a)]
    for event in tap.received:
        assert not any(key.endswith("_hash") or key == "security_question" for key in event["data"]), event
        assert event["data"]["email"] and event["data"]["customer_code"]
    services.hasher.close()


# --- 7. an erasure during a replay: the replay's snapshot published the account after its `erased` -------


async def test_an_erasure_during_a_replay_is_never_followed_by_the_accounts_events(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay read every event since TIME at its start, then published them batch by batch: a profile
    erased meanwhile had its `erased` published by the relay, and then the replay published its
    registration (e-mail, phone) again, after it."""
    names = new_names()
    services = Services.create(settings(names), database)
    (a,) = await registered(services, 1, start=7500)
    relay = Relay(services, AMQP_URL, names)
    real_publish = events_cli.publish
    erasing: list[asyncio.Task[Any]] = []

    async def erased_first(exchange, batch, share=False):  # type: ignore[no-untyped-def]
        if not erasing:  # the customer erases the profile while the replay is under way
            erasing.append(asyncio.ensure_future(erasure.erase_profile(services, a)))
            await asyncio.wait(erasing, timeout=1.5)  # the fix makes it wait for this batch
            if erasing[0].done():
                await relay.drain_once(relay_exchange)  # the relay publishes `erased` at once
        return await real_publish(exchange, batch, share)

    monkeypatch.setattr(events_cli, "publish", erased_first)
    # The 1.5 s above is the test's, not the broker's: SQLite's bound on the broker's confirmation is lifted.
    monkeypatch.setattr(events_cli, "REPLAY_HOLD_SQLITE", 600.0)
    async with confirming(names) as (relay_exchange, tap):
        assert await relay.drain_once(relay_exchange) == 1
        await events_cli._replay(services, AMQP_URL, services.clock() - timedelta(days=1))
        assert isinstance(await erasing[0], Erased)
        await relay.drain_once(relay_exchange)
        await tap.wait_for(3)
        await asyncio.sleep(0.2)  # a late delivery would land now
    types = [event["type"].rsplit(".", 1)[1] for event in tap.received]
    assert types == ["registered", "registered", "erased"], types
    services.hasher.close()


# --- 8. a fenced leader's consumer: the message must go back for the new leader ------------------------


@pytest.mark.postgres
async def test_a_fenced_leaders_consumer_gives_the_message_back_and_stops_with_one_line(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The customer event's transaction found the newer epoch and raised Superseded: the consumer's task died
    without a word, and the message waited unacknowledged until its connection closed."""
    if database.dialect != "postgresql":
        pytest.skip("the epoch fence is PostgreSQL's (SQLite: one process per file)")
    names = new_names()
    services = Services.create(settings(names), database)
    (record,) = person_records(1, start=7600)
    bot = 7_600_024
    database.fence = Fence(bot, await raise_epoch(database, bot))
    await raise_epoch(database, bot)  # a standby took over
    caplog.set_level(logging.INFO, logger="unogas_bot.events.inbound")
    try:
        async with broker(names) as (channel, _):
            consumer = await start(services, names, channel)
            exchange = await channel.get_exchange(names.customers)
            body = cloudevent("upserted", 1, columns(record))
            await exchange.publish(aio_pika.Message(body), routing_key="it.unogas.customer.upserted")
            await until(lambda: consumer.task.done(), "the consumer to stop")  # type: ignore[attr-defined]
            queue = await channel.declare_queue(names.queue, passive=True)
            message = await queue.get(fail=False, timeout=5)
            assert message is not None and message.body == body  # there for the new leader
            await message.nack(requeue=True)
            await stop(consumer)
    finally:
        database.fence = None
    lines = [
        r for r in caplog.records if r.name == "unogas_bot.events.inbound" and r.levelno >= logging.WARNING
    ]
    assert len(lines) == 1 and "newer leader" in lines[0].getMessage(), [r.getMessage() for r in lines]
    assert await stores(services).registry.get(record.customer_code) is None
    services.hasher.close()


# --- 9. the operator declared the bot's queue without its dead-letter exchange ---------------------------


async def test_a_queue_declared_with_other_arguments_is_one_line_that_says_what_to_do(
    database: Database,
) -> None:
    """RabbitMQ refuses to declare a queue again with other arguments: the line said "lost the broker ...
    ChannelPreconditionFailed: PRECONDITION_FAILED - inequivalent arg ..." cut at 200 characters, before
    the name of the value, and no word of what to do."""
    names = new_names()
    services = Services.create(settings(names), database)
    async with broker(names) as (channel, _):
        await channel.declare_queue(names.queue, durable=True)  # the operator's, without the DLX
        with pytest.raises(CliError) as refused:
            await events_cli.consume_once(services, AMQP_URL)
    line = str(refused.value)
    assert "other settings" in line and "x-dead-letter-exchange" in line and "\n" not in line, line
    services.hasher.close()
