"""The relay: the leader publishes the outbox to the durable topic exchange `unogas.accounts` (routing key =
the event's type), in outbox order, which is each account's order, and marks an event sent only once the
broker confirmed it (publisher confirms).

At least once: an event whose confirmation is lost (the connection drops after the broker took it) is
published again, with the same `id`. A batch is published in order on one channel; what the broker
confirmed, up to the first event it did not, is marked sent, and the rest is sent again after it, so no
account's later event is ever marked sent before an earlier one.

A takeover (PostgreSQL) never waits for a publish: the leader checks its epoch before each batch (a read
that locks nothing), publishes with no transaction open, and marks what was confirmed in one statement
that checks the epoch again and commits on its own, so no freeze of the process holds the epoch's row.
A leader superseded in between (frozen mid-publish) may still publish the batch it had in flight, which
the new leader publishes too (the same events, same ids), but it marks nothing, publishes nothing newer
and stops.

A broker that is down, refuses us, or has no queue bound for an event's type never reaches the customers:
their changes commit into the outbox as always, the relay retries with a growing pause (up to
`events_backoff_max`) and logs one line each time its state changes, not one per try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractExchange
from pamqp.commands import Basic
from sqlalchemy.exc import SQLAlchemyError

from storage.outbox import AUDIT_TO_TYPE, StoredEvent, unshared
from unogas_bot.events.broker import (
    CONTENT_TYPE,
    Names,
    accounts_exchange,
    connect,
    where,
)
from unogas_bot.events.supervisor import FIRST_BACKOFF, supervise
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds between looks at an empty outbox (events another process wrote, e.g. the CLI)
STATS_EVERY = 1.0  # seconds between counts of the outbox for the metrics
# Seconds for the broker to confirm an event. Long: a confirmation given up on means a reconnection and the
# unconfirmed part of the batch published again (duplicates, with their ids), and on an overloaded machine
# a confirmation once took over 15 s; a connection that is really dead is found by AMQP's heartbeat.
PUBLISH_TIMEOUT = 60.0
PASS_BATCHES = 20  # batches per pass before the relay looks at its connection, its stop and its figures


class Unroutable(Exception):
    """The broker took an event but no queue is bound for its type: it stays in the outbox."""


class Refused(Exception):
    """The broker refused an event (a nack: a queue bound for its type is full with `reject-publish`, or
    the broker could not store it): it stays in the outbox. Not a lost connection."""


@dataclass
class RelayStats:
    """What bot/metrics.py shows of the relay (events/ is below the bot and knows no Prometheus)."""

    state: str = "starting"
    depth: int = 0
    oldest: datetime | None = None
    published: int = 0
    retries: int = 0


def message(event: StoredEvent, share: bool = False) -> aio_pika.Message:
    """The event as published: what travels only when sharing is dropped unless `share` (the setting now,
    not when the event was written)."""
    return aio_pika.Message(
        body=(event.payload if share else unshared(event.payload)).encode(),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.event_id,
        type=event.type,
    )


def one_per_account(batch: list[StoredEvent]) -> list[StoredEvent]:
    """`batch` up to the first event of an account it already holds. A batch is published all at once, and
    a broker may refuse one event (a nack: a full queue with reject-publish) and take the next: with two
    events of one account in a batch, the later one could be delivered without the earlier, which a
    consumer keeping the highest sequence would then drop when it comes again. One event per account per
    batch: an account's next event is published only once the one before it was confirmed."""
    seen: set[int] = set()
    for index, event in enumerate(batch):
        if event.account_id in seen:
            return batch[:index]
        seen.add(event.account_id)
    return batch


async def publish(
    exchange: AbstractExchange, batch: Sequence[StoredEvent], share: bool = False
) -> tuple[int, BaseException | None]:
    """Publish `batch` in order, all confirmations awaited together: how many from the start were confirmed,
    and why the next one was not (None when all were)."""
    results = await asyncio.gather(
        *(
            exchange.publish(
                message(event, share), routing_key=event.type, mandatory=True, timeout=PUBLISH_TIMEOUT
            )
            for event in batch
        ),
        return_exceptions=True,
    )
    for done, result in enumerate(results):
        if isinstance(result, aio_pika.exceptions.DeliveryError):  # a nack, on a connection that is fine
            return done, Refused(f"the broker refused {batch[done].type} (a nack: is a bound queue full?)")
        if isinstance(result, BaseException):
            return done, result
        if not isinstance(result, Basic.Ack):  # returned: no queue bound for this type
            return done, Unroutable(batch[done].type)
    return len(results), None


def _relay_state(exc: Exception) -> tuple[str, str] | None:
    """The relay's own failures (beside the broker's, events/supervisor.py): an event no queue takes, one
    the broker refused, the database (whose own metrics and alerts tell more)."""
    if isinstance(exc, Unroutable):
        return "unroutable", str(exc)
    if isinstance(exc, Refused):
        return "refused", str(exc)
    if isinstance(exc, SQLAlchemyError):
        return "database", f"the database failed ({type(exc).__name__})"
    return None


class Relay:
    """`await relay.run()` until `stop()`; `wake()` when an account event committed."""

    def __init__(self, services: Services, url: str, names: Names) -> None:
        self.services = services
        self.url = url
        self.names = names
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stats_at = 0.0
        # The last row of the last batch the broker confirmed whole: the next batch starts after it. Back to
        # 0 (a scan from the start) after a failure and whenever a pass finds nothing, so an event that
        # committed late with a lower row number (another account's: one account's events get their rows
        # in commit order) is taken at the next pass.
        self._cursor = 0

    def wake(self) -> None:
        self._wake.set()

    def observe(self, audit_event: str) -> None:
        """An audit observer (storage.db.Database.audit_observers): an account change committed."""
        if audit_event in AUDIT_TO_TYPE:
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _state(self, state: str, detail: str = "") -> None:
        if state == self.stats.state:
            return
        self.stats.state = state
        if state == "connected":
            log.info("events relay: connected to %s, publishing the outbox", detail)
        elif state == "unreachable":
            log.warning("events relay: %s; account events wait in the outbox, retrying", detail)
        elif state == "database":
            log.warning("events relay: %s; retrying, nothing is lost", detail)
        elif state == "refused":
            log.warning("events relay: %s; events wait in the outbox, retrying", detail)
        elif state == "unroutable":
            log.warning(
                "events relay: no queue is bound to %s for %s; events wait in the outbox, retrying",
                self.names.accounts,
                detail,
            )

    async def run(self) -> None:
        await supervise(
            self._session,
            stop=self._stop,
            stats=self.stats,
            say=self._state,
            log=log,
            name="events relay",
            fenced="this process publishes nothing more",
            backoff_max=lambda: self.services.settings.events_backoff_max,
            classify=_relay_state,
            after_failure=self._count_retry,
        )

    async def _count_retry(self) -> None:
        self.stats.retries += 1
        await self._refresh_stats(force=True)

    async def _session(self) -> None:
        connection = await connect(self.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await accounts_exchange(channel, self.names)
            pause = FIRST_BACKOFF
            while not self._stop.is_set():
                if connection.is_closed or channel.is_closed:  # noticed while idle, not at the next event
                    raise ConnectionError("the connection was closed")
                try:
                    sent = await self.drain_once(exchange)
                except SQLAlchemyError as exc:  # the broker is fine: keep its connection, retry later
                    self._state("database", f"the database failed ({type(exc).__name__})")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), pause)
                    pause = min(pause * 2, self.services.settings.events_backoff_max)
                    continue
                pause = FIRST_BACKOFF
                # Said once the outbox could be read and the broker took what there was (if anything).
                self._state("connected", where(self.url))
                await self._refresh_stats(force=sent == 0)
                if sent == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
                    self._wake.clear()
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def drain_once(self, exchange: AbstractExchange) -> int:
        """Publish what the outbox holds, batch after batch (up to PASS_BATCHES); how many the broker
        confirmed (and were marked sent).

        Pipelined: while the broker confirms one batch, the next is read, and while that one is published
        the last is marked sent. A batch is published only once the one before was confirmed whole, so
        the order holds; a failure marks the confirmed part and stops."""
        settings = self.services.settings
        size = settings.events_batch
        batch = await use_cases.pending_events(self.services, size, self._cursor)
        if not batch and self._cursor:
            self._cursor = 0
            batch = await use_cases.pending_events(self.services, size)
        batch = one_per_account(batch)
        sent = 0
        previous: list[int] = []
        marking: asyncio.Future[None] | None = None
        reading: asyncio.Future[list[StoredEvent]] | None = None
        try:
            for _ in range(PASS_BATCHES):
                if not batch:
                    break
                self._cursor = 0  # until this batch is confirmed whole
                # In flight below the cursor: this batch, and the last one while it is being marked.
                in_flight = [event.row for event in batch] + previous
                reading = asyncio.ensure_future(
                    use_cases.pending_events(self.services, size, batch[-1].row, in_flight)
                )
                # A leader superseded publishes nothing more; no transaction is open during the publish.
                await use_cases.check_epoch(self.services)
                confirmed, failure = await publish(exchange, batch, settings.events_share_credentials)
                if marking is not None:
                    await marking
                marking = asyncio.ensure_future(
                    use_cases.mark_sent(self.services, [event.row for event in batch[:confirmed]])
                )
                self.stats.published += confirmed
                sent += confirmed
                if failure is not None:
                    raise failure
                self._cursor = batch[-1].row
                previous = [event.row for event in batch]
                batch, reading = one_per_account(await reading), None
        finally:
            # A read under way when the pass failed (the database cut, the broker lost) is not left behind:
            # its own failure would come out later as asyncio's "never retrieved", with a traceback.
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
            if marking is not None:
                await marking
        return sent

    async def _refresh_stats(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._stats_at < STATS_EVERY:
            return
        self._stats_at = now
        with contextlib.suppress(Exception):  # the database's own errors are counted and logged elsewhere
            self.stats.depth, self.stats.oldest = await use_cases.outbox_stats(self.services)
