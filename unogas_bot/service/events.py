"""The use cases of the events (issue 24): the outbox as the relay, the CLI and housekeeping see it, and the
CRM's customer events applied to the registry. The events themselves are written by the account changes'
own units of work (storage/outbox.py); nothing here talks to the broker (unogas_bot/events/ does)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.accounts import Accounts
from storage.customer_csv import RowError, staged_row
from storage.customer_events import CustomerEvents
from storage.inbox import Superseded
from storage.outbox import Outbox, StoredEvent, mark_sent_fenced
from unogas_bot import rules
from unogas_bot.domain import customer_code_key

if TYPE_CHECKING:
    from unogas_bot.service.context import Services

CUSTOMER_TYPES = ("it.unogas.customer.upserted", "it.unogas.customer.removed")
_FIELDS = ("customer_code", "kind", "first_name", "last_name", "company_name", "tax_code")
_ID_LEN = 64


class MalformedEvent(ValueError):
    """A customer event that cannot be applied as it is (the reason, without the customer's data)."""


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    id: str
    removed: bool
    sequence: int
    code_key: str
    row: Any  # storage.registry_import.StagedRow for an upsert, None for a removal


def parse_customer_event(body: bytes) -> CustomerEvent:
    """A CloudEvents 1.0 structured JSON customer event, checked by the CSV import's rules."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedEvent("not JSON") from None
    except RecursionError:  # nested deeper than the parser goes: no CloudEvent is
        raise MalformedEvent("JSON nested too deep") from None
    if not isinstance(document, dict):
        raise MalformedEvent("not a JSON object")
    if document.get("specversion") != "1.0":
        raise MalformedEvent("specversion is not 1.0")
    event_id = document.get("id")
    # Printable: a control character (NUL, which PostgreSQL refuses in text) would fail at every delivery.
    if not isinstance(event_id, str) or not 0 < len(event_id) <= _ID_LEN or not event_id.isprintable():
        raise MalformedEvent(f"id must be a string of 1-{_ID_LEN} printable characters")
    kind = document.get("type")
    if kind not in CUSTOMER_TYPES:
        raise MalformedEvent("type is neither it.unogas.customer.upserted nor .removed")
    sequence = document.get("sequence")
    # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
    if isinstance(sequence, str) and sequence.isascii() and sequence.isdigit():
        sequence = int(sequence)
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence < 2**63:
        raise MalformedEvent("sequence must be a whole number >= 0")
    data = document.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("customer_code"), str):
        raise MalformedEvent("data must be an object with customer_code")
    removed = kind == CUSTOMER_TYPES[1]
    try:
        if removed:
            code = rules.customer_code.validate(data["customer_code"])
            return CustomerEvent(event_id, True, sequence, customer_code_key(code), None)
        fields = ["" if data.get(name) is None else data.get(name) for name in _FIELDS]
        if not all(isinstance(value, str) for value in fields):
            raise MalformedEvent("data's fields must be strings")
        row = staged_row(0, fields)
    except rules.Invalid as exc:
        raise MalformedEvent(f"customer_code: {exc.reason}") from None
    except RowError as exc:
        raise MalformedEvent(str(exc)) from None
    return CustomerEvent(event_id, False, sequence, row[2], row)


async def apply_customer_event(services: Services, event: CustomerEvent) -> str:
    """Apply the event in one transaction, its id recorded with it: "applied", "duplicate", "stale" or
    "kept" (a removal of a customer who has a profile). Raises storage.customer_events.CustomerConflict."""
    async with services.db.transaction() as session:
        return await CustomerEvents(session, services.clock).apply(
            event.id, event.code_key, event.sequence, event.row
        )


# --- the outbox ------------------------------------------------------------------------------------------


async def check_epoch(services: Services) -> None:
    """Before a batch is published: raises storage.inbox.Superseded when a newer leader raised the epoch
    (PostgreSQL). One plain read that locks nothing: nothing holds the epoch while the broker takes the
    batch, nor when the process freezes right after the read (SIGSTOP), so a takeover never waits for the
    relay. A leader superseded after this check may still publish the batch it had in flight (the same
    events, same ids: at least once), but `mark_sent` then fails and the relay stops. Without a fence
    (SQLite: one process per file) it does nothing."""
    fence = services.db.fence
    if fence is None:
        return
    async with services.db.autocommit() as conn:
        await fence.check_now(conn)


async def pending_events(
    services: Services, limit: int, after: int = 0, in_flight: Sequence[int] = ()
) -> list[StoredEvent]:
    async with services.db.session() as session:
        return await Outbox(session, services.clock).pending(limit, after, in_flight)


async def mark_sent(services: Services, rows: Sequence[int]) -> None:
    """Mark `rows` sent once the broker confirmed them. On PostgreSQL in one statement that commits on its
    own and checks the epoch as it runs: a leader superseded meanwhile marks nothing (Superseded; the new
    leader publishes them again, same ids), and a new leader's raise waits at most for that statement,
    never for a process frozen in the middle of a transaction."""
    if not rows:
        return
    fence = services.db.fence
    if fence is None:
        async with services.db.transaction() as session:
            await Outbox(session, services.clock).mark_sent(rows)
        return
    async with services.db.autocommit() as conn:
        marked = await mark_sent_fenced(conn, rows, services.clock(), bot_id=fence.bot_id, epoch=fence.epoch)
    if not marked:
        raise Superseded(f"bot {fence.bot_id}: a newer epoch leads, this process has {fence.epoch}")


async def outbox_stats(services: Services) -> tuple[int, datetime | None]:
    async with services.db.session() as session:
        return await Outbox(session, services.clock).stats()


async def list_events(
    services: Services,
    *,
    pending_only: bool = False,
    since: datetime | None = None,
    limit: int | None = None,
    with_pending: bool = False,
) -> list[StoredEvent]:
    """The outbox's events in order; `since` with `with_pending`: those written since then and every one
    still pending (the replay: an account's older pending event goes out before its newer ones)."""
    async with services.db.session() as session:
        return await Outbox(session, services.clock).listing(
            pending_only=pending_only, since=since, limit=limit, with_pending=with_pending
        )


async def purge_events(services: Services, *, relayed: bool) -> int:
    """Delete what the retention (EVENTS_RETENTION_DAYS) no longer keeps: sent events, and without a broker
    (`relayed` False) unsent ones too, so the outbox stays bounded."""
    cutoff = services.clock() - services.settings.events_retention
    async with services.db.transaction() as session:
        return await Outbox(session, services.clock).purge(
            sent_before=cutoff, unsent_before=None if relayed else cutoff
        )


@asynccontextmanager
async def replay_batch(
    services: Services, since: datetime, after: int, limit: int
) -> AsyncIterator[tuple[list[StoredEvent], Callable[[Sequence[int]], Awaitable[None]]]]:
    """The replay's next batch, held (see Outbox.replay_batch) until the block ends, and how to mark what of
    it the broker confirmed, in the same transaction."""
    async with services.db.transaction() as session:
        outbox = Outbox(session, services.clock)
        yield await outbox.replay_batch(since, after, limit), outbox.mark_sent


async def audit_replay(services: Services, count: int, since: datetime) -> None:
    """The replay in the audit trail (inside `acting_operator`, which names the operator)."""
    async with services.db.transaction() as session:
        await Accounts(session, services.clock).add_event(
            "events_replayed",
            detail=f"{count} event(s) written since {since.isoformat()} or still pending published again",
        )
