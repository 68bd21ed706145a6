"""The broker goes away while customers register (issue 24), on SQLite and PostgreSQL, with the real
Application and the real RabbitMQ behind a loopback proxy that refuses (tests/kit/tcpproxy.py): nobody is
refused or slowed, the outbox grows, the relay says so once, and when the broker is back the outbox drains
with nothing lost.

The issue's outage lasts 60 s; here it lasts OUTAGE seconds with the relay's longest pause between retries
cut from 30 s to 0.3 s, so the same retry-and-give-up cycle runs many times in a few seconds of real time."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import aio_pika
import pytest

from storage.db import Database
from tests.kit.amqpkit import AMQP_URL, broker, new_names
from tests.kit.botkit import SEED_SENTENCE, TEST_SETTINGS, Bot, last_text, register_person, running_bot
from tests.kit.stores import stores
from tests.kit.tcpproxy import TcpProxy
from tests.ops.test_events_inbound import cloudevent, columns
from unogas_bot.bench.data import person_records
from unogas_bot.events.broker import Names, customers_queue
from unogas_bot.events.inbound import Consumer
from unogas_bot.events.relay import Relay
from unogas_bot.service import events as use_cases

OUTAGE = 2.0  # seconds the broker refuses (the 60 s, shortened: see the module docstring)
DURING = 6  # registrations while it refuses


async def timed_registration(bot: Bot, record, index: int) -> float:  # type: ignore[no-untyped-def]
    customer = {"code": record.customer_code, "first": record.first_name, "last": record.last_name}
    customer["tax"] = record.tax_code
    started = time.monotonic()
    events = await register_person(bot.user(7000 + index), customer=customer, email=f"c{index}@example.it")
    took = time.monotonic() - started
    assert SEED_SENTENCE in last_text(events), "refused while the broker was away"
    return took


async def until(what: str, check, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_customers_register_while_the_broker_is_away_and_nothing_is_lost(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="unogas_bot.events.relay")
    caplog.set_level(logging.INFO, logger="unogas_bot.events.inbound")
    names: Names = new_names()
    settings = dataclasses.replace(
        TEST_SETTINGS, amqp_url=AMQP_URL, events_name_prefix=names.prefix, events_backoff_max=0.3
    )
    records = person_records(DURING + 1, start=6000)
    (newcomer,) = person_records(1, start=6100)
    async with (
        broker(names) as (channel, tap),
        TcpProxy("127.0.0.1", 5672) as proxy,
        running_bot(database, settings=settings, demo=False) as bot,
    ):
        services = bot.services
        await stores(services).registry.upsert_many(records)
        await customers_queue(channel, names)
        proxied = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
        relay = Relay(services, proxied, names)
        services.db.audit_observers.append(relay.observe)
        task = asyncio.ensure_future(relay.run())
        consumer = Consumer(services, proxied, names)  # the customer events' side of the same outage
        consuming = asyncio.ensure_future(consumer.run())
        await until("the consumer to connect", lambda: consumer.stats.state == "connected")
        try:
            usual = await timed_registration(bot, records[0], 0)
            await tap.wait_for(1)

            proxy.refuse()
            await until("the relay to notice", lambda: relay.stats.state == "unreachable")
            await until("the consumer to notice", lambda: consumer.stats.state == "unreachable")
            # The CRM adds a customer meanwhile: the event waits in the bot's durable queue.
            exchange = await channel.get_exchange(names.customers)
            body = cloudevent("upserted", 1, columns(newcomer))
            await exchange.publish(aio_pika.Message(body), routing_key="it.unogas.customer.upserted")
            outage_started = time.monotonic()
            took = await asyncio.gather(
                *(timed_registration(bot, record, i) for i, record in enumerate(records[1:], 1))
            )
            depth, _ = await use_cases.outbox_stats(services)
            assert depth == DURING  # the outbox grew, nothing went out
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - outage_started)))  # the outage lasts
            # It kept trying: waited for with a deadline, not read once (a busy machine retries later).
            await until("the relay to retry", lambda: relay.stats.retries >= 3 and proxy.refused >= 3)
            assert len(tap.received) == 1

            proxy.forward()
            await tap.wait_for(DURING + 1)
            await until("the outbox to drain", lambda: relay.stats.state == "connected")
            await until("the customer event", lambda: consumer.stats.outcomes["applied"] == 1)
            assert await stores(services).registry.get(newcomer.customer_code) is not None
        finally:
            relay.stop()
            await consumer.stop()
            await asyncio.wait_for(asyncio.gather(task, consuming), 20)
        stored = {e.event_id for e in await use_cases.list_events(services)}
        assert set(tap.ids()) == stored and len(stored) == DURING + 1  # 0 lost
        assert await use_cases.list_events(services, pending_only=True) == []
    # Not slowed beyond the usual: a registration during the outage (DURING at once) took at most what
    # DURING registrations one after another take with the broker there, and never waited on the relay.
    assert max(took) < usual * DURING + 1.0, (usual, took)
    said = [r.getMessage() for r in caplog.records if r.name == "unogas_bot.events.inbound"]
    assert sum("retrying" in line for line in said) == 1, said  # the consumer's outage: one line too
    lines = [r.getMessage() for r in caplog.records if r.name == "unogas_bot.events.relay"]
    assert sum("account events wait in the outbox" in line for line in lines) == 1, lines
    assert sum("connected to" in line for line in lines) == 2, lines  # at the start, and once back
