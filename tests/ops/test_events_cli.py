"""`unogas-bot events list / replay / consume` as an operator runs them (a real process on a SQLite file),
against the real RabbitMQ where one answers: a replay publishes the same ids again and is audited; consume
applies what waits; a broker that is not there is one line naming AMQP_URL, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aio_pika
from sqlalchemy import select

from storage.db import Database
from storage.models import AuditEvent
from storage.registry import CustomerRegistry
from tests.kit.amqpkit import AMQP_URL, broker, new_names, require_broker
from tests.ops.test_events_inbound import cloudevent, columns
from tests.ops.test_events_relay import new_account
from unogas_bot.bench.data import person_records
from unogas_bot.config import Settings
from unogas_bot.events.broker import customers_queue
from unogas_bot.service import events as use_cases
from unogas_bot.service import registration
from unogas_bot.service.context import Services


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AMQP_", "EVENTS_"))}
    return subprocess.run(
        [sys.executable, "-m", "unogas_bot", "events", *args],
        env={**base, "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _registered(url: str, count: int, share: bool = True) -> list[str]:
    db = Database(url)
    try:
        await db.upgrade()
        services = Services.create(Settings(bcrypt_rounds=4, events_share_credentials=share), db)
        records = person_records(count, start=4000)
        await CustomerRegistry(db).upsert_many(records)
        for i, record in enumerate(records):
            await registration.register(services, new_account(record, i))
        services.hasher.close()
        return [e.event_id for e in await use_cases.list_events(services)]
    finally:
        await db.dispose()


def test_list_without_a_broker_shows_the_pending_events_and_never_a_hash(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/e.db"
    ids = asyncio.run(_registered(url, 2))
    listed = cli("list", "--pending", DATABASE_URL=url)
    assert listed.returncode == 0, listed.stderr
    assert "2 event(s) shown, 2 pending in all (AMQP_URL not set" in listed.stdout
    assert all(event_id in listed.stdout for event_id in ids)
    as_json = cli("list", "--json", DATABASE_URL=url)
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [d["id"] for d in documents] == ids
    assert all(d["data"]["password_hash"] == "[not shown]" for d in documents)
    assert "$2b$" not in as_json.stdout


def test_a_broker_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/e.db"
    for args in (("consume", "--once"), ("replay", "--since", "1d", "--operator", "anna")):
        done = cli(*args, DATABASE_URL=url, AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "unogas-bot: cannot reach the broker at 127.0.0.1:1 (AMQP_URL): connection refused "
            "(is RabbitMQ running, on that port?)"
        ]
    unset = cli("consume", "--once", DATABASE_URL=url)
    assert unset.returncode == 1 and "AMQP_URL is not set" in unset.stderr and "Traceback" not in unset.stderr


async def test_replay_publishes_the_same_ids_again_audited_and_consume_applies(tmp_path: Path) -> None:
    await require_broker()
    url = f"sqlite+aiosqlite:///{tmp_path}/e.db"
    ids = await _registered(url, 3)
    names = new_names()
    env = {"DATABASE_URL": url, "AMQP_URL": AMQP_URL, "EVENTS_NAME_PREFIX": names.prefix}
    (newcomer,) = person_records(1, start=4100)
    async with broker(names) as (channel, tap):
        replay = await asyncio.to_thread(cli, "replay", "--since", "2000-01-01", "--operator", "anna", **env)
        assert replay.returncode == 0, replay.stderr
        await tap.wait_for(3)
        assert tap.ids() == ids
        await customers_queue(channel, names)
        exchange = await channel.get_exchange(names.customers)
        body = cloudevent("upserted", 1, columns(newcomer))
        await exchange.publish(aio_pika.Message(body), routing_key="it.unogas.customer.upserted")
        consume = await asyncio.to_thread(cli, "consume", "--once", **env)
        assert consume.returncode == 0, consume.stderr
        assert "1 customer event(s)" in consume.stdout and "1 applied" in consume.stdout
    db = Database(url)
    try:
        assert await CustomerRegistry(db).get(newcomer.customer_code) is not None
        services = Services.create(Settings(bcrypt_rounds=4), db)
        assert await use_cases.list_events(services, pending_only=True) == []
        async with db.session() as session:
            replays = select(AuditEvent.detail).where(AuditEvent.event == "events_replayed")
            (row,) = (await session.execute(replays)).all()
        assert "3 event(s)" in row.detail and "operator anna" in row.detail
        services.hasher.close()
    finally:
        await db.dispose()
