"""The benchmark's events phase (issue 24), against the RabbitMQ at AMQP_URL (default the local one):

1. drain: a backlog of account events (100,000 in the full run) written to the outbox, then the relay
   started; events per second from its start until the broker confirmed the last one, and the process's
   CPU per event meanwhile;
2. CPU per non-hashing update with the relay on, against the framework floor measured in the same phase:
   turns with the relay connected and without it (A B B A), each its own customers, as the bot phase does.

Skipped, saying why, when no broker answers. Every exchange and queue has a name of its own, deleted after.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika
from sqlalchemy import insert

from storage.models import OutboxEvent
from storage.outbox import SOURCE, TYPE_PREFIX, rfc3339
from storage.registry import CustomerRegistry
from unogas_bot.bench import bot_load as bench_bot
from unogas_bot.bench import data as bench_data
from unogas_bot.bench import registry_load as bench_registry
from unogas_bot.bench import rig as bench_rig
from unogas_bot.clock import utcnow
from unogas_bot.config import Settings
from unogas_bot.events.broker import Names
from unogas_bot.events.relay import Relay
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
WRITE_BATCH = 5_000


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "").strip() or DEFAULT_AMQP_URL


async def broker_problem(url: str) -> str | None:
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url, timeout=3), 5)
    except Exception as exc:  # any reason: the phase cannot run, and the table says why
        return f"no RabbitMQ at AMQP_URL ({type(exc).__name__})"
    await connection.close()
    return None


def _rows(count: int) -> list[dict[str, Any]]:
    """`count` events as the registrations write them (one per account), payloads of the usual size."""
    now = utcnow()
    rows = []
    for i in range(count):
        event_id = str(uuid.uuid4())
        document = {
            "specversion": "1.0",
            "id": event_id,
            "type": TYPE_PREFIX + "registered",
            "source": SOURCE,
            "subject": str(i + 1),
            "time": rfc3339(now),
            "datacontenttype": "application/json",
            "sequence": 1,
            "data": {
                "customer_code": bench_data.customer_code(i),
                "email": f"cliente{i}@example.it",
                "phone": "+393471234567",
                "registered_at": rfc3339(now),
            },
        }
        rows.append(
            {
                "event_id": event_id,
                "account_id": i + 1,
                "sequence": 1,
                "type": document["type"],
                "payload": json.dumps(document, separators=(",", ":")),
                "created_at": now - timedelta(seconds=count - i),
                "sent_at": None,
            }
        )
    return rows


class _Sink:
    """A queue bound to the bench's accounts exchange, so the broker routes (and confirms) every event."""

    def __init__(self, url: str, names: Names) -> None:
        self.url, self.names = url, names
        self.connection: aio_pika.abc.AbstractConnection | None = None

    async def __aenter__(self) -> _Sink:
        self.connection = await aio_pika.connect(self.url)
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            self.names.accounts, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(f"{self.names.prefix}sink", arguments={"x-max-length": 1000})
        await queue.bind(exchange, "#")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.connection is not None
        channel = await self.connection.channel()
        await channel.queue_delete(f"{self.names.prefix}sink")
        await channel.exchange_delete(self.names.accounts)
        await self.connection.close()


async def _relay_running(services: Services, url: str, names: Names) -> tuple[Relay, asyncio.Task[None]]:
    relay = Relay(services, url, names)
    return relay, asyncio.ensure_future(relay.run())


async def _stop(relay: Relay, task: asyncio.Task[None]) -> None:
    relay.stop()
    await asyncio.wait_for(task, 30)


async def drain(
    services: Services, url: str, names: Names, backlog: int, report: Callable[[str], None]
) -> dict:
    report(f"events: writing a backlog of {backlog:,} events to the outbox")
    rows = _rows(backlog)
    for start in range(0, backlog, WRITE_BATCH):
        async with services.db.transaction(bulk=True) as session:
            await session.execute(insert(OutboxEvent), rows[start : start + WRITE_BATCH])
    report(f"events: draining {backlog:,} events to the broker")
    started, cpu = time.perf_counter(), time.process_time()
    relay, task = await _relay_running(services, url, names)
    while relay.stats.published < backlog:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
            raise RuntimeError("the relay stopped")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await _stop(relay, task)
    depth, _ = await use_cases.outbox_stats(services)
    if depth:
        raise RuntimeError(f"{depth} events left in the outbox")
    return {
        "events_backlog": backlog,
        "events_drain_seconds": seconds,
        "events_drain_per_s": backlog / seconds,
        "events_cpu_ms_per_event": cpu / backlog * 1000,
        "events_duplicates_published": relay.stats.published - backlog,
    }


async def events_phases(
    settings: Settings,
    backlog: int,
    users: int,
    database_url: str | None,
    workdir: Path,
    report: Callable[[str], None],
) -> dict[str, Any]:
    url = amqp_url()
    problem = await broker_problem(url)
    if problem is not None:
        return {"events_skipped": problem}
    names = Names(f"bench-{secrets.token_hex(4)}.")
    out: dict[str, Any] = {}
    customers = bench_data.person_records(5 * users, start=5_000_000)
    async with _Sink(url, names), bench_registry.bench_place(database_url, workdir, "events") as place:
        db = place.database()
        try:
            await db.upgrade()
            await CustomerRegistry(db).upsert_many(customers)
            services = Services.create(settings, db)
            try:
                out |= await drain(services, url, names, backlog, report)
            finally:
                services.hasher.close()
            report("events: CPU per non-hashing update with the relay on and off, against the floor")
            async with bench_rig.bot_rig(settings, db) as rig:
                # Warmed up as many at once as a turn, unmeasured: the turns find the bot as it runs, its
                # pool's connections open (a turn with a few warm-up customers before it paid for opening
                # them: the relay's first turn, about 0.06 ms per update with 20 connections).
                warm = customers[4 * users :]
                await bench_bot.nonhash_cpu(rig, warm, first_user=50_000_000)
                floor = await bench_bot.floor(users, 3)
                turns: dict[bool, list[bench_bot.Rate]] = {True: [], False: []}
                for turn, relay_on in enumerate((True, False, False, True)):
                    group = customers[turn * users : (turn + 1) * users]
                    running = await _relay_running(rig.services, url, names) if relay_on else None
                    rig.writing()
                    turns[relay_on].append(
                        await bench_bot.nonhash_cpu(rig, group, first_user=51_000_000 + turn * users)
                    )
                    if running is not None:
                        await _stop(*running)
        finally:
            await db.dispose()
    on, off = turns[True][0] + turns[True][1], turns[False][0] + turns[False][1]
    out |= {
        "events_floor_cpu_ms_per_update": floor.cpu_per_update * 1000,
        "events_cpu_ms_per_update_relay_on": on.cpu_per_update * 1000,
        "events_cpu_ms_per_update_relay_off": off.cpu_per_update * 1000,
        "cpu_per_update_vs_floor_relay": on.cpu_per_update / floor.cpu_per_update,
    }
    return out
