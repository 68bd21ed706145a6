"""The CRM's customer events in: the bot's durable queue `unogas-bot.customers`, bound to the topic exchange
`unogas.customers`. Each message is applied in one transaction with its id (service/events.py), and
acknowledged only after that committed: a crash in between redelivers it, and the recorded id makes the
redelivery change nothing.

A message that cannot be applied as it is (not a CloudEvent, a field the CSV import would refuse, a record
that would merge two customers) is rejected without requeueing: the broker moves it to the dead-letter
queue `unogas-bot.customers.dead`. One log line and a count each, never a crash or a redelivery loop. A
database that fails is another matter: the message goes back to the queue after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy.exc import DataError, SQLAlchemyError

from storage.customer_events import CustomerConflict
from storage.inbox import Superseded
from unogas_bot.events.broker import Names, connect, customers_queue, where
from unogas_bot.events.supervisor import supervise
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

PREFETCH = 100
DATABASE_PAUSE = 1.0  # seconds before a message the database failed on goes back to the queue


@dataclass
class InboundStats:
    state: str = "starting"
    outcomes: Counter[str] = field(default_factory=Counter)  # applied, duplicate, stale, kept, dead_lettered


def shown_id(message_id: str | None) -> str:
    """The CRM's message id as a log line shows it: escaped (a line break in it would forge a line)."""
    text = (message_id or "?")[:64]
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


async def handle(services: Services, incoming: AbstractIncomingMessage, stats: InboundStats) -> str:
    """Apply, dead-letter or requeue one message; returns its outcome."""
    try:
        event = use_cases.parse_customer_event(incoming.body)
        outcome = await use_cases.apply_customer_event(services, event)
    except (use_cases.MalformedEvent, CustomerConflict) as exc:
        await incoming.reject(requeue=False)
        stats.outcomes["dead_lettered"] += 1
        # The message id (the CRM's) and the reason, never the customer's data.
        log.warning("customer event %s dead-lettered: %s", shown_id(incoming.message_id), exc)
        return "dead_lettered"
    except Superseded:  # a newer leader consumes now: the message goes back to the queue for it
        await incoming.nack(requeue=True)
        raise
    except DataError as exc:  # the database refuses this message's values: it would fail every time
        await incoming.reject(requeue=False)
        stats.outcomes["dead_lettered"] += 1
        log.warning(
            "customer event %s dead-lettered: the database refused a value (%s)",
            shown_id(incoming.message_id),
            type(exc.orig).__name__ if exc.orig is not None else "DataError",
        )
        return "dead_lettered"
    except (SQLAlchemyError, OSError) as exc:
        log.warning(
            "customer event not applied (database: %s); it goes back to the queue", type(exc).__name__
        )
        await asyncio.sleep(DATABASE_PAUSE)
        await incoming.nack(requeue=True)
        return "requeued"
    await incoming.ack()
    stats.outcomes[outcome] += 1
    if outcome == "kept":
        log.warning("customer event %s: removal not applied, the customer has a profile", event.id[:64])
    return outcome


async def drain(services: Services, queue: AbstractQueue, stats: InboundStats) -> int:
    """Handle what the queue holds now (the CLI's `events consume --once`); how many messages."""
    handled = 0
    while (incoming := await queue.get(no_ack=False, fail=False)) is not None:
        await handle(services, incoming, stats)
        handled += 1
    return handled


class Consumer:
    """`await consumer.run()` until `stop()`: consume, reconnecting with backoff, one log line per change."""

    def __init__(self, services: Services, url: str, names: Names) -> None:
        self.services = services
        self.url = url
        self.names = names
        self.stats = InboundStats()
        self._stop = asyncio.Event()
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def stop(self) -> None:
        self._stop.set()
        if self._connection is not None:  # ends the wait for the next message
            with contextlib.suppress(Exception):
                await self._connection.close()

    def _state(self, state: str, detail: str) -> None:
        if state == self.stats.state:
            return
        self.stats.state = state
        if state == "connected":
            log.info("customer events: consuming %s from %s", self.names.queue, detail)
        else:
            log.warning("customer events: %s; retrying", detail)

    async def run(self) -> None:
        await supervise(
            self._session,
            stop=self._stop,
            stats=self.stats,
            say=self._state,
            log=log,
            name="customer events",
            fenced="this process consumes no more",
            backoff_max=lambda: self.services.settings.events_backoff_max,
        )

    async def _session(self) -> None:
        connection = self._connection = await connect(self.url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=PREFETCH)
            queue = await customers_queue(channel, self.names)
            self._state("connected", where(self.url))
            async with queue.iterator() as messages:
                async for incoming in messages:
                    await handle(self.services, incoming, self.stats)
                    if self._stop.is_set():
                        break
        finally:
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.close()
