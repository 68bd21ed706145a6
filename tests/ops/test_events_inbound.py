"""The CRM's customer events in, through the real RabbitMQ (issue 24), on SQLite and PostgreSQL: duplicates
and out-of-order sequences end in the last state of each customer; a customer added by an event can
register at once; a malformed or merging event lands in the dead-letter queue, once, without stopping the
consumer. Skipped, saying why, when no broker answers at AMQP_URL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import uuid
from typing import Any

import aio_pika
import pytest

from storage.db import Database
from tests.kit.amqpkit import AMQP_URL, broker, new_names
from tests.kit.botkit import SEED_SENTENCE, TEST_SETTINGS, last_text, register_person, running_bot
from tests.kit.stores import stores
from unogas_bot.bench.data import person_records
from unogas_bot.domain import CustomerRecord
from unogas_bot.events.broker import Names, customers_queue
from unogas_bot.events.inbound import Consumer
from unogas_bot.service.context import Services

SURNAMES = ("Rossi", "Bianchi", "Verdi", "Russo", "Ferrari", "Esposito", "Romano", "Colombo", "Ricci")


def cloudevent(kind: str, sequence: int, data: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id or str(uuid.uuid4()),
            "type": f"it.unogas.customer.{kind}",
            "source": "urn:unogas:crm",
            "subject": data["customer_code"],
            "time": "2026-12-06T10:00:00Z",
            "datacontenttype": "application/json",
            "sequence": sequence,
            "data": data,
        }
    ).encode()


def columns(record: CustomerRecord) -> dict[str, str]:
    return {
        "customer_code": record.customer_code,
        "kind": record.kind,
        "first_name": record.first_name or "",
        "last_name": record.last_name or "",
        "company_name": record.company_name or "",
        "tax_code": record.tax_code,
    }


async def publish(channel: aio_pika.abc.AbstractChannel, names: Names, bodies: list[bytes]) -> None:
    exchange = await channel.get_exchange(names.customers)
    for body in bodies:
        try:
            kind = str(json.loads(body)["type"])
        except (ValueError, KeyError):
            kind = "it.unogas.customer.upserted"
        await exchange.publish(aio_pika.Message(body, message_id=str(uuid.uuid4())), routing_key=kind)


async def consumed(consumer: Consumer, count: int, deadline: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while sum(consumer.stats.outcomes.values()) < count:
        assert loop.time() < end, f"consumed {dict(consumer.stats.outcomes)} of {count}"
        await asyncio.sleep(0.02)


async def start(services: Services, names: Names, channel: aio_pika.abc.AbstractChannel) -> Consumer:
    await customers_queue(channel, names)  # declared before anything is published to the exchange
    consumer = Consumer(services, AMQP_URL, names)
    consumer.task = asyncio.ensure_future(consumer.run())  # type: ignore[attr-defined]
    return consumer


async def stop(consumer: Consumer) -> None:
    await consumer.stop()
    await asyncio.wait_for(consumer.task, 10)  # type: ignore[attr-defined]


async def test_a_thousand_events_end_in_the_last_state_and_the_customer_registers(
    database: Database,
) -> None:
    names = new_names()
    settings = dataclasses.replace(TEST_SETTINGS, amqp_url=AMQP_URL, events_name_prefix=names.prefix)
    services = Services.create(settings, database)
    rng = random.Random(24)
    bases = person_records(150, start=2000)
    messages: list[bytes] = []
    expected: dict[str, dict[str, str] | None] = {}
    for base in bases:
        versions = rng.randint(3, 7)
        state: dict[str, str] | None = None
        for sequence in range(1, versions + 1):
            if sequence == versions and rng.random() < 0.2:
                messages.append(cloudevent("removed", sequence, {"customer_code": base.customer_code}))
                state = None
            else:
                state = columns(base) | {"last_name": rng.choice(SURNAMES)}
                messages.append(cloudevent("upserted", sequence, state))
        expected[base.customer_code] = state
    unique = len(messages)
    while len(messages) < 1000:  # redeliveries: the same event (same id) again
        messages.append(rng.choice(messages))
    rng.shuffle(messages)
    async with broker(names) as (channel, _):
        consumer = await start(services, names, channel)
        await publish(channel, names, messages)
        await consumed(consumer, 1000)
        await stop(consumer)
    outcomes = consumer.stats.outcomes
    assert outcomes["dead_lettered"] == 0 and outcomes["duplicate"] == 1000 - unique
    assert outcomes["stale"] > 0  # out of order: some older states arrived after newer ones
    for code, state in expected.items():
        record = await stores(services).registry.get(code)
        if state is None:
            assert record is None, code
        else:
            assert record is not None and (record.first_name, record.last_name) == (
                state["first_name"],
                state["last_name"],
            ), code
    services.hasher.close()
    # A customer the CRM added by an event registers in the chat at once (the real Application).
    code, state = next((c, s) for c, s in expected.items() if s is not None)
    customer = {
        "code": code,
        "first": state["first_name"],
        "last": state["last_name"],
        "tax": state["tax_code"],
    }
    async with running_bot(database, demo=False) as bot:
        events = await register_person(bot.user(4242), customer=customer, email="nuovo@example.it")
        assert SEED_SENTENCE in last_text(events)


async def test_poison_messages_go_to_the_dead_letter_queue(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    names = new_names()
    settings = dataclasses.replace(TEST_SETTINGS, amqp_url=AMQP_URL, events_name_prefix=names.prefix)
    services = Services.create(settings, database)
    holder, other = person_records(2, start=3000)
    await stores(services).registry.upsert_many([holder])
    good = cloudevent("upserted", 1, columns(other))
    poison = [
        b"\xff not json at all",
        b'{"specversion": "1.0", "type": "it.unogas.customer.upserted"}',  # no id
        cloudevent("upserted", 1, columns(other))[:-20],  # cut short
        cloudevent("upserted", 1, columns(other) | {"tax_code": "RSSMRA75C12H501X"}),  # bad checksum
        cloudevent("upserted", 1, columns(other) | {"kind": "alien"}),
        cloudevent("upserted", -4, columns(other)),
        # The holder's code with another tax code: the CSV import refuses to merge two customers; so do we.
        cloudevent("upserted", 1, columns(holder) | {"tax_code": other.tax_code}),
    ]
    caplog.set_level(logging.WARNING, logger="unogas_bot.events.inbound")
    async with broker(names) as (channel, _):
        consumer = await start(services, names, channel)
        await publish(channel, names, [*poison, good])
        await consumed(consumer, len(poison) + 1)
        dead = await channel.declare_queue(names.dead_letters, durable=True)
        letters = []
        while (message := await dead.get(fail=False, timeout=5)) is not None:
            letters.append(message.body)
            await message.ack()
        assert consumer.stats.state == "connected"  # no crash, no reconnect loop
        await stop(consumer)
    assert sorted(letters) == sorted(poison)
    assert consumer.stats.outcomes["dead_lettered"] == len(poison)
    assert consumer.stats.outcomes["applied"] == 1
    assert (await stores(services).registry.get(holder.customer_code)).tax_code == holder.tax_code  # type: ignore[union-attr]
    assert (await stores(services).registry.get(other.customer_code)) is not None
    lines = [r.getMessage() for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(lines) == len(poison)
    assert not any(other.tax_code in line or (other.last_name or "") in line for line in lines)
    services.hasher.close()
