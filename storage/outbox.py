"""The transactional outbox (issue 24): every change of an account writes its event here, in the change's own
transaction, so the event exists exactly when the change does. The relay (unogas_bot/events/relay.py)
publishes them to RabbitMQ later and marks them sent.

An event is a CloudEvents 1.0 document in structured JSON (https://cloudevents.io, "JSON Event Format"),
written by hand: ``specversion``, ``id`` (a UUID, the receiver's idempotency key: a redelivery keeps it),
``type`` (``it.unogas.account.<what>``), ``source``, ``subject`` (the account's number), ``time``,
``datacontenttype`` and the extension attribute ``sequence`` (1, 2, 3... per account, gap-free while the
account lives). What ``data`` holds per type is deliberately little: see docs/events.md.

An erasure removes every event of the account still in the outbox (pending or sent: they hold its data),
writes the ``erased`` event, and marks the account's stream erased: nothing about it is written after.
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Account, Customer, EventStream, OutboxEvent, UTCDateTime
from unogas_bot.clock import utcnow

TYPE_PREFIX = "it.unogas.account."
SOURCE = "urn:unogas:unogas-bot"
TYPES = (
    "registered",
    "email_changed",
    "phone_changed",
    "question_changed",
    "password_changed",
    "locked",
    "unlocked",
    "erased",
)
# The audit events (storage/accounts.py's add_event) that are changes the CRM is told about.
AUDIT_TO_TYPE = {
    "registered": "registered",
    "email_changed": "email_changed",
    "phone_changed": "phone_changed",
    "phone_removed": "phone_changed",
    "question_changed": "question_changed",
    "password_changed": "password_changed",
    "password_recovered": "password_changed",
    "login_locked": "locked",
    "login_strangers_held": "locked",
    "recovery_locked": "locked",
    "recovery_strangers_held": "locked",
    "unlocked": "unlocked",
    "erased": "erased",
    "deleted": "erased",
}

# EVENTS_SHARE_CREDENTIALS per database engine (set once by the services that own it; see `configure`).
_SHARE: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def configure(engine: Any, *, share_credentials: bool) -> None:
    """Put the bcrypt hashes into the events written through `engine` (an AsyncEngine) or not."""
    _SHARE[engine.sync_engine] = share_credentials


def _shares(session: AsyncSession) -> bool:
    bind = session.bind
    return bool(bind is not None and _SHARE.get(getattr(bind, "sync_engine", bind), False))


def rfc3339(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# What travels only with EVENTS_SHARE_CREDENTIALS=true (see Outbox._data).
SHARED_ONLY = ("password_hash", "security_answer_hash", "security_question")


def unshared(payload: str) -> str:
    """`payload` without what travels only when sharing: an event written while EVENTS_SHARE_CREDENTIALS
    was on, published (or replayed) after it was turned off, goes out as if written with it off."""
    if not any(f'"{key}"' in payload for key in SHARED_ONLY):
        return payload
    document = json.loads(payload)
    data = document.get("data")
    if isinstance(data, dict):
        for key in SHARED_ONLY:
            data.pop(key, None)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One outbox row: the document as it is published, and its bookkeeping."""

    row: int
    event_id: str
    account_id: int
    sequence: int
    type: str
    payload: str
    created_at: datetime
    sent_at: datetime | None


async def on_audit(
    session: AsyncSession, clock: Callable[[], datetime], event: str, account_id: int | None
) -> None:
    """The hook in `Accounts.add_event`: an audit event that is an account change writes its event."""
    kind = AUDIT_TO_TYPE.get(event)
    if kind is not None and account_id is not None:
        await Outbox(session, clock).record(kind, account_id, event)


# What the events may tell of an account (columns, not the ORM entity: nothing is cached in the session).
_ACCOUNT_COLUMNS = (
    Account.email,
    Account.phone,
    Account.password_hash,
    Account.security_question,
    Account.answer_hash,
    Account.registered_at,
    Account.password_changed_at,
    Account.login_locked_until,
    Account.recovery_locked_until,
)


def _lock_scope(audit_event: str) -> str:
    return "recovery" if audit_event.startswith("recovery") else "login"


class Outbox:
    """The outbox on the caller's session (a unit of work's, or a transaction's): nothing here commits."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    # --- writing, in the change's transaction -------------------------------------------------------

    async def record(self, kind: str, account_id: int, audit_event: str = "") -> None:
        """Write the `kind` event of account `account_id` as it stands now in this transaction."""
        if kind == "erased":
            await self._erased(account_id)
            return
        view = (
            await self._session.execute(
                select(*_ACCOUNT_COLUMNS, Customer.customer_code)
                .join(Customer, Customer.id == Account.customer_id)
                .where(Account.id == account_id)
            )
        ).one_or_none()
        if view is None:  # erased meanwhile: nothing more about it
            return
        sequence = await self._next_sequence(account_id)
        if sequence is None:
            return
        data = self._data(kind, view, view.customer_code, audit_event)
        await self._insert(kind, account_id, sequence, data)

    def _data(self, kind: str, account: Any, code: str, audit_event: str) -> dict[str, Any]:
        share = _shares(self._session)
        data: dict[str, Any] = {"customer_code": code}
        if kind == "registered":
            data |= {"email": account.email, "phone": account.phone}
            data["registered_at"] = rfc3339(account.registered_at)
            if share:
                data |= {
                    "password_hash": account.password_hash,
                    "security_question": account.security_question,
                    "security_answer_hash": account.answer_hash,
                }
        elif kind == "email_changed":
            data["email"] = account.email
        elif kind == "phone_changed":
            data["phone"] = account.phone
        elif kind == "question_changed" and share:
            data |= {
                "security_question": account.security_question,
                "security_answer_hash": account.answer_hash,
            }
        elif kind == "password_changed":
            data["reason"] = "recovered" if audit_event == "password_recovered" else "changed"
            data["changed_at"] = rfc3339(account.password_changed_at)
            if share:
                data["password_hash"] = account.password_hash
        elif kind == "locked":
            scope = _lock_scope(audit_event)
            until = account.recovery_locked_until if scope == "recovery" else account.login_locked_until
            data |= {"scope": scope, "until": rfc3339(until) if until else None}
        return data

    async def _erased(self, account_id: int) -> None:
        # Pending events are never published after the erasure (and sent ones hold the account's data).
        await self._session.execute(delete(OutboxEvent).where(OutboxEvent.account_id == account_id))
        stmt = self._upsert_stream(account_id, erased=True)
        sequence = (await self._session.execute(stmt)).scalar_one()
        await self._insert("erased", account_id, sequence, {"account_id": account_id})

    async def _next_sequence(self, account_id: int) -> int | None:
        """The account's next number, None when it was erased. The row's lock (the upsert) serialises the
        account's writers: their events get the numbers, and the outbox ids, in commit order."""
        stmt = self._upsert_stream(account_id, erased=False)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    def _upsert_stream(self, account_id: int, *, erased: bool) -> Any:
        table = EventStream.__table__
        dialect = self._session.bind.dialect.name if self._session.bind is not None else "sqlite"
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = builder(table).values(account_id=account_id, last_sequence=1, erased=erased)
        values: dict[str, Any] = {"last_sequence": table.c.last_sequence + 1}
        if erased:
            values["erased"] = True
        where = None if erased else table.c.erased.is_(False)
        return stmt.on_conflict_do_update(
            index_elements=[table.c.account_id], set_=values, where=where
        ).returning(table.c.last_sequence)

    async def _insert(self, kind: str, account_id: int, sequence: int, data: dict[str, Any]) -> None:
        now = self._clock()
        event_id = str(uuid.uuid4())
        document = {
            "specversion": "1.0",
            "id": event_id,
            "type": TYPE_PREFIX + kind,
            "source": SOURCE,
            "subject": str(account_id),
            "time": rfc3339(now),
            "datacontenttype": "application/json",
            "sequence": sequence,
            "data": data,
        }
        await self._session.execute(
            insert(OutboxEvent).values(
                event_id=event_id,
                account_id=account_id,
                sequence=sequence,
                type=TYPE_PREFIX + kind,
                payload=json.dumps(document, ensure_ascii=False, separators=(",", ":")),
                created_at=now,
                sent_at=None,
            )
        )

    # --- the relay, the CLI, housekeeping ------------------------------------------------------------

    async def pending(self, limit: int, after: int = 0, in_flight: Sequence[int] = ()) -> list[StoredEvent]:
        """The oldest `limit` events not yet confirmed by the broker, in outbox order, from row `after` on
        (the relay's cursor: on PostgreSQL the rows it marked sent leave dead index entries behind until
        vacuumed, which a scan from the start would walk through again at every batch). `in_flight`: the
        rows at or below `after` the relay is publishing or marking now."""
        query = (
            select(OutboxEvent)
            .where(OutboxEvent.sent_at.is_(None), OutboxEvent.id > after)
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        if after:
            # A row's number is taken at its INSERT, not at the commit (PostgreSQL): an account's event that
            # committed after the cursor passed its number is unsent behind it, and the account's later
            # events wait for it (the next scan from the start), or they would overtake it.
            earlier = aliased(OutboxEvent)
            late = exists().where(
                earlier.account_id == OutboxEvent.account_id,
                earlier.sent_at.is_(None),
                earlier.id <= after,
            )
            if in_flight:
                late = late.where(earlier.id.not_in(list(in_flight)))
            query = query.where(~late)
        return [_stored(row) for row in (await self._session.execute(query)).scalars()]

    async def replay_batch(self, since: datetime, after: int, limit: int) -> list[StoredEvent]:
        """The replay's next `limit` events after row `after`: written since `since`, or still pending. Read
        in the replay's transaction, FOR KEY SHARE on PostgreSQL (SQLite: the write lock is the
        transaction's): an erasure (a DELETE) waits until the batch is published, and a batch read after it
        holds nothing of the account, so no replayed event follows the account's `erased`. KEY SHARE, not
        SHARE: the relay's mark of the same events (an UPDATE of `sent_at`, no key) does not wait for the
        replay's broker, nor, through the epoch the mark holds, a new leader's takeover."""
        query = (
            select(OutboxEvent)
            .where(
                OutboxEvent.id > after,
                or_(OutboxEvent.created_at >= since, OutboxEvent.sent_at.is_(None)),
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        bind = self._session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            query = query.with_for_update(read=True, key_share=True)
        return [_stored(row) for row in (await self._session.execute(query)).scalars()]

    async def mark_sent(self, rows: Sequence[int]) -> None:
        if rows:
            await self._session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_(rows)).values(sent_at=self._clock())
            )

    async def stats(self) -> tuple[int, datetime | None]:
        """How many events wait, and when the oldest of them was written."""
        row = (
            await self._session.execute(
                select(func.count(), func.min(OutboxEvent.created_at)).where(OutboxEvent.sent_at.is_(None))
            )
        ).one()
        return int(row[0]), row[1]

    async def listing(
        self,
        *,
        pending_only: bool = False,
        since: datetime | None = None,
        limit: int | None = None,
        with_pending: bool = False,
    ) -> list[StoredEvent]:
        query = select(OutboxEvent).order_by(OutboxEvent.id)
        if pending_only:
            query = query.where(OutboxEvent.sent_at.is_(None))
        if since is not None:
            # With the pending ones (`with_pending`, the replay): an account's older event still unsent must
            # go out before its newer ones, not after them (a consumer keeping the highest sequence per
            # account would take it for a repetition).
            recent = OutboxEvent.created_at >= since
            query = query.where(or_(recent, OutboxEvent.sent_at.is_(None)) if with_pending else recent)
        if limit is not None:
            query = query.limit(limit)
        return [_stored(row) for row in (await self._session.execute(query)).scalars()]

    async def purge(self, *, sent_before: datetime, unsent_before: datetime | None) -> int:
        """Delete events sent before `sent_before` and (without a broker: `unsent_before`) events never
        sent, written before `unsent_before`; returns how many."""
        result = await self._session.execute(
            delete(OutboxEvent).where(OutboxEvent.sent_at.is_not(None), OutboxEvent.sent_at < sent_before)
        )
        purged = int(result.rowcount)  # type: ignore[attr-defined]
        if unsent_before is not None:
            result = await self._session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.sent_at.is_(None), OutboxEvent.created_at < unsent_before
                )
            )
            purged += int(result.rowcount)  # type: ignore[attr-defined]
        return purged


# Marking a confirmed batch sent under the leadership epoch (PostgreSQL), in ONE statement run on its own
# (no BEGIN, no COMMIT): the epoch's row is held FOR SHARE only while the server runs it, so a relay frozen
# at any point (SIGSTOP) never holds a new leader's raise back; a raise that committed first leaves the
# rows unmarked (the first column is false).
_MARK_FENCED = text(
    """
    WITH fence AS (SELECT epoch FROM bot_leadership WHERE bot_id = :bot FOR SHARE),
    allowed AS (SELECT 1 WHERE EXISTS (SELECT 1 FROM fence WHERE epoch = :epoch)),
    marked AS (
        UPDATE outbox_events SET sent_at = :now
        WHERE id = ANY(CAST(:rows AS BIGINT[])) AND EXISTS (SELECT 1 FROM allowed)
        RETURNING id
    )
    SELECT EXISTS (SELECT 1 FROM allowed), (SELECT count(*) FROM marked)
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def mark_sent_fenced(conn: Any, rows: Sequence[int], now: datetime, *, bot_id: int, epoch: int) -> bool:
    """Mark `rows` sent if `epoch` still leads `bot_id`, on `conn` (an autocommit connection, PostgreSQL):
    False, and nothing marked, when a newer leader raised it."""
    params = {"bot": bot_id, "epoch": epoch, "now": now, "rows": list(rows)}
    allowed, _ = (await conn.execute(_MARK_FENCED, params)).one()
    return bool(allowed)


def _stored(row: OutboxEvent) -> StoredEvent:
    return StoredEvent(
        row.id, row.event_id, row.account_id, row.sequence, row.type, row.payload, row.created_at, row.sent_at
    )
