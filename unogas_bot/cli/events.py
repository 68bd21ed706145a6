"""`unogas-bot events ...`: the account-event outbox and the CRM's customer events (issue 24, docs/events.md).

- `events list [--pending] [--json]`: what the outbox holds (hashes, if shared, are never printed);
- `events replay --since TIME --operator NAME`: publish again what was written since TIME, with the same
  ids (the CRM drops what it has), audited;
- `events consume --once`: apply what waits in the bot's customer queue now, then stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database, database_unavailable
from storage.outbox import StoredEvent
from unogas_bot.cli.common import CliError, add_operator_argument, operator_name, with_database
from unogas_bot.config import Settings
from unogas_bot.events import inbound
from unogas_bot.events.broker import (
    BrokerUnreachable,
    accounts_exchange,
    connect,
    customers_queue,
    reason,
    settings_names,
    where,
)
from unogas_bot.events.relay import one_per_account, publish
from unogas_bot.service import events as use_cases
from unogas_bot.service.context import Services
from unogas_bot.service.support import acting_operator

_BROKER_ERRORS = (aio_pika.exceptions.AMQPError, OSError, ConnectionError, TimeoutError)
_HIDDEN = "[not shown]"
_RELATIVE = re.compile(r"(\d{1,5})\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
SINCE_EXAMPLE = "2026-12-06T10:00Z, 2026-12-06 or 6h"
REPLAY_BATCH = 500
# Seconds the replay waits for the broker to confirm a batch on SQLite, where the batch's transaction is the
# file's write lock: the bot's customers (another process) wait for it, up to their busy timeout (10 s).
# A broker slower than this (blocked by a memory alarm) stops the replay instead of them.
REPLAY_HOLD_SQLITE = 2.0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("events", help="account events out, customer events in (RabbitMQ)")
    esub = group.add_subparsers(dest="action", required=True)
    listing = esub.add_parser("list", help="the account events in the outbox, oldest first")
    listing.add_argument("--pending", action="store_true", help="only those the broker has not confirmed")
    listing.add_argument("--json", action="store_true", help="one CloudEvent (JSON) per line")
    listing.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    replay = esub.add_parser("replay", help="publish again the events written since TIME (same ids)")
    replay.add_argument("--since", required=True, metavar="TIME", help=f"such as {SINCE_EXAMPLE}")
    add_operator_argument(replay)
    consume = esub.add_parser("consume", help="apply the customer events waiting in the bot's queue")
    consume.add_argument("--once", action="store_true", required=True, help="what waits now, then stop")


def parse_since(text: str, now: datetime) -> datetime:
    raw = text.strip()
    if match := _RELATIVE.fullmatch(raw):
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {raw!r} is not a time: give one such as {SINCE_EXAMPLE}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _shown(event: StoredEvent) -> dict[str, Any]:
    document = json.loads(event.payload)
    data = document.get("data") or {}
    for key in list(data):
        if key.endswith("_hash"):
            data[key] = _HIDDEN
    return document


def cmd_events_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        services = Services.create(settings, db)
        try:
            found = await use_cases.list_events(services, pending_only=args.pending, limit=max(1, args.limit))
            depth, _ = await use_cases.outbox_stats(services)
        finally:
            services.hasher.close()
        for event in found:
            if args.json:
                print(json.dumps(_shown(event), ensure_ascii=False))
                continue
            state = "pending" if event.sent_at is None else f"sent {event.sent_at:%Y-%m-%d %H:%M:%S}"
            print(
                f"{event.created_at:%Y-%m-%d %H:%M:%S}  {event.type.rsplit('.', 1)[-1]:<16} "
                f"account {event.account_id:<8} #{event.sequence:<4} {state:<22} {event.event_id}"
            )
        if not args.json:
            print(
                f"{len(found)} event(s) shown, {depth} pending in all"
                + ("" if settings.amqp_url else " (AMQP_URL not set)")
            )
        return 0

    return with_database(settings, work)


def _broker_url(settings: Settings) -> str:
    if settings.amqp_url is None:
        raise CliError("AMQP_URL is not set: give the broker, such as amqp://user:pass@rabbitmq:5672/")
    return settings.amqp_url


async def _replay(services: Services, url: str, since: datetime) -> int:
    """Publish again, batch by batch, what was written since `since` and what is still pending (an account's
    older pending event must not arrive after its newer ones). Each batch is read when it is published, in
    a transaction an erasure waits for: nothing of an account erased meanwhile follows its `erased`."""
    try:
        connection = await connect(url)
    except BrokerUnreachable as exc:
        raise CliError(str(exc)) from None
    share = services.settings.events_share_credentials
    count, after, failure, completed = 0, 0, None, False
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await accounts_exchange(channel, settings_names(services.settings))
        while failure is None:
            published = False
            try:
                async with use_cases.replay_batch(services, since, after, REPLAY_BATCH) as (read, mark):
                    if not read:
                        break
                    batch = one_per_account(read)  # an account's next event only once its last is confirmed
                    confirmed, failure = await _publish_held(services, exchange, batch, share)
                    count += confirmed  # published again, whatever happens to the mark
                    published = True
                    await mark([e.row for e in batch[:confirmed] if e.sent_at is None])
            except SQLAlchemyError as exc:
                # The batch's transaction ended under it once the broker had confirmed (a broker slower
                # than the server's idle limit): the events are out; the relay marks the pending ones.
                # The database itself failing shows at the next batch's read.
                if not (published and database_unavailable(exc)):
                    raise
            after = batch[-1].row
        completed = failure is None
    except _BROKER_ERRORS as exc:
        raise _broker_failure(url, exc) from None
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
        # Who published events again is in the audit trail, also when the broker or the database stopped
        # the replay halfway: what it had published by then.
        if count or completed:
            await use_cases.audit_replay(services, count, since)
    if failure is not None:
        raise CliError(
            f"{count} event(s) published again; the broker did not take the next ({reason(failure)}): "
            "run the replay again"
        )
    return count


async def _publish_held(
    services: Services, exchange: Any, batch: list[StoredEvent], share: bool
) -> tuple[int, BaseException | None]:
    """`publish`, within REPLAY_HOLD_SQLITE on SQLite (nothing confirmed when it runs out: the batch's
    transaction rolls back and the replay stops, saying so)."""
    if services.db.dialect != "sqlite":
        return await publish(exchange, batch, share)
    try:
        return await asyncio.wait_for(publish(exchange, batch, share), REPLAY_HOLD_SQLITE)
    except TimeoutError:
        return 0, TimeoutError(f"no confirmation within {REPLAY_HOLD_SQLITE:g} s")


def cmd_events_replay(settings: Settings, args: argparse.Namespace) -> int:
    url = _broker_url(settings)
    operator = operator_name(args)

    async def work(db: Database) -> int:
        services = Services.create(settings, db)
        try:
            since = parse_since(args.since, services.clock())
            count = await _replay(services, url, since)
        finally:
            services.hasher.close()
        print(
            f"{count} event(s) written since {since:%Y-%m-%d %H:%M:%S} UTC or still pending "
            "published again (same ids)"
        )
        return 0

    with acting_operator(operator):
        return with_database(settings, work)


def _broker_failure(url: str, exc: BaseException) -> CliError:
    said = reason(exc)
    return CliError(f"{'refused by' if 'other settings' in said else 'lost'} {where(url)}: {said}")


async def consume_once(services: Services, url: str) -> tuple[int, inbound.InboundStats]:
    """Apply what waits in the bot's customer queue now: how many messages, and how they went."""
    stats = inbound.InboundStats()
    try:
        connection = await connect(url)
    except BrokerUnreachable as exc:
        raise CliError(str(exc)) from None
    try:
        channel = await connection.channel()
        queue = await customers_queue(channel, settings_names(services.settings))
        handled = await inbound.drain(services, queue, stats)
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {type(exc).__name__}") from None
    except _BROKER_ERRORS as exc:
        raise _broker_failure(url, exc) from None
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
    return handled, stats


def cmd_events_consume(settings: Settings, args: argparse.Namespace) -> int:
    url = _broker_url(settings)

    async def work(db: Database) -> int:
        services = Services.create(settings, db)
        try:
            handled, stats = await consume_once(services, url)
        finally:
            services.hasher.close()
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(stats.outcomes.items()))
        print(f"{handled} customer event(s) from {where(url)}" + (f": {summary}" if summary else ""))
        return 0

    return with_database(settings, work)


COMMANDS = {
    ("events", "list"): cmd_events_list,
    ("events", "replay"): cmd_events_replay,
    ("events", "consume"): cmd_events_consume,
}
