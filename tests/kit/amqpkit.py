"""The real RabbitMQ for the events tests (issue 24): AMQP_URL (default the local broker), skipped with the
reason when none answers. Each test gets its own name prefix (EVENTS_NAME_PREFIX), so tests never share an
exchange or a queue, and everything with that prefix is deleted at the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest

from unogas_bot.events.broker import Names

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
_problem: list[str | None] = []


async def require_broker() -> None:
    """Skip the test, saying why, when no broker answers at AMQP_URL."""
    if not _problem:
        try:
            connection = await asyncio.wait_for(aio_pika.connect(AMQP_URL, timeout=3), 5)
            await connection.close()
            _problem.append(None)
        except Exception as exc:  # whatever the reason, the test cannot run: say which
            _problem.append(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
    if _problem[0] is not None:
        pytest.skip(f"RabbitMQ not reachable at AMQP_URL ({AMQP_URL.rsplit('@', 1)[-1]}): {_problem[0]}")


def new_names() -> Names:
    return Names(f"test-{secrets.token_hex(4)}.")


@dataclass
class Tap:
    """A queue bound to the accounts exchange that records every event the broker delivers, in order."""

    received: list[dict[str, Any]] = field(default_factory=list)
    raw: list[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [event["id"] for event in self.received]

    async def wait_for(self, count: int, deadline: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while len(self.received) < count:
            assert loop.time() < end, f"only {len(self.received)} of {count} events arrived"
            await asyncio.sleep(0.02)


@asynccontextmanager
async def broker(names: Names) -> AsyncIterator[tuple[aio_pika.abc.AbstractChannel, Tap]]:
    """A channel on the broker and a tap on `names.accounts`; deletes the test's names at the end."""
    await require_broker()
    connection = await aio_pika.connect(AMQP_URL)
    tap = Tap()
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(names.accounts, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"{names.prefix}tap", auto_delete=False)
        await queue.bind(exchange, "#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            tap.raw.append(message)
            tap.received.append(json.loads(message.body))
            await message.ack()

        await queue.consume(on_message)
        yield channel, tap
    finally:
        with contextlib.suppress(Exception):
            cleanup = await connection.channel()
            for queue_name in ("tap", "unogas-bot.customers", "unogas-bot.customers.dead"):
                await cleanup.queue_delete(f"{names.prefix}{queue_name}")
            for exchange_name in (names.accounts, names.customers, names.dead_letter_exchange):
                await cleanup.exchange_delete(exchange_name)
        await connection.close()


# --- for the synchronous process tests: each call on an event loop of its own ---------------------------


def broker_problem() -> str | None:
    """Why no broker answers at AMQP_URL (None: one does)."""
    try:
        asyncio.run(require_broker())
    except pytest.skip.Exception as exc:
        return str(exc)
    return None


def declare_tap(names: Names) -> None:
    """A durable tap queue on `names.accounts`, holding what is published until `read_tap`."""

    async def go() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                names.accounts, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(f"{names.prefix}tap", durable=True)
            await queue.bind(exchange, "#")

    asyncio.run(go())


def read_tap(names: Names) -> list[aio_pika.abc.AbstractIncomingMessage]:
    async def go() -> list[aio_pika.abc.AbstractIncomingMessage]:
        connection = await aio_pika.connect(AMQP_URL)
        found = []
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{names.prefix}tap", durable=True)
            while (message := await queue.get(fail=False, timeout=5)) is not None:
                await message.ack()
                found.append(message)
        return found

    return asyncio.run(go())


def delete_names(names: Names) -> None:
    async def go() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            for queue_name in ("tap", "unogas-bot.customers", "unogas-bot.customers.dead"):
                with contextlib.suppress(Exception):
                    await channel.queue_delete(f"{names.prefix}{queue_name}")
            for exchange_name in (names.accounts, names.customers, names.dead_letter_exchange):
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(exchange_name)

    with contextlib.suppress(Exception):
        asyncio.run(go())
