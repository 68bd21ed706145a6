"""What a logged-in customer does with their own profile: change it, take a copy, erase it (issue 15).

`Profiles` works inside a unit of work's transaction (storage/unit_of_work.py), like `Accounts`; nothing
here commits. Kept apart from storage/accounts.py because these are the data-protection operations on a
whole profile: the export reads every table that holds the customer's data, the erasure empties them and
pseudonymises the audit trail, and the retention rule of that trail lives here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.attempts import Attempts, of_account
from storage.audit_trail import code_key_sql
from storage.models import Account, Attempt, AuditEvent, Customer, TelegramSession
from unogas_bot.clock import utcnow
from unogas_bot.domain import AccountNotFound, EmailTaken, customer_code_key, normalize_email

# What an erasure leaves of a customer code named in an event's detail; a code as any text holds one.
ERASED_CODE = "[erased]"
_CODE_LIKE = re.compile(r"[A-Za-z0-9/-]+")
# Never exported, never shown: what would let anyone guess a password or an answer offline.
SECRET_COLUMNS = frozenset({"password_hash", "answer_hash"})
# Internal row ids and the link between tables: no information about the customer.
# Row numbers and the registry's matching keys (`code_key`, `name_key`: derived from the code and the
# names, for look-ups): no datum of the customer's, nothing an export shows.
INTERNAL_COLUMNS = frozenset({"id", "customer_id", "account_id", "code_key", "name_key"})


def _plain(value: Any) -> Any:
    """A value as JSON holds it: times as ISO 8601 text (UTC)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _columns(table: Table, *, keep: frozenset[str] = frozenset()) -> list[Any]:
    hidden = (SECRET_COLUMNS | INTERNAL_COLUMNS) - keep
    return [column for column in table.columns if column.key not in hidden]


class Profiles:
    """Profile changes, the export of everything stored about a profile, its erasure and audit retention."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    async def _set(self, account_id: int, **values: Any) -> None:
        result = await self._session.execute(update(Account).where(Account.id == account_id).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise AccountNotFound(account_id)

    # --- changes ----------------------------------------------------------------------------------------

    async def record_privacy_notice(self, account_id: int, version: str) -> None:
        """Record that the profile's customer was shown privacy notice `version`, now."""
        await self._set(account_id, privacy_version=version, privacy_acknowledged_at=self._clock())

    async def change_email(self, account_id: int, email: str) -> None:
        """The profile's new user ID. Raises ``EmailTaken`` (the transaction must then be rolled back) or
        ``AccountNotFound``; the unique constraint decides a race, as at registration."""
        try:
            await self._set(account_id, email=normalize_email(email))
        except IntegrityError as exc:
            raise EmailTaken(normalize_email(email)) from exc

    async def change_phone(self, account_id: int, phone: str | None) -> None:
        """The profile's new phone number (E.164), or None to remove it."""
        await self._set(account_id, phone=phone)

    async def change_question(self, account_id: int, question: str, answer_hash: str) -> None:
        """A new security question with its answer's bcrypt hash (computed by the caller)."""
        await self._set(account_id, security_question=question, answer_hash=answer_hash)

    # --- export -----------------------------------------------------------------------------------------

    async def export(self, account_id: int) -> dict[str, Any] | None:
        """Everything stored about the profile, as plain JSON data, never a hash: the profile, the customer
        record it was matched with, its Telegram sessions, its attempts still counted and its audit trail
        (oldest first). None when there is no such profile."""
        session = self._session
        account = (
            await session.execute(select(*_columns(Account.__table__)).where(Account.id == account_id))
        ).one_or_none()
        if account is None:
            return None
        customer = (
            await session.execute(
                select(*_columns(Customer.__table__))
                .join(Account, Account.customer_id == Customer.id)
                .where(Account.id == account_id)
            )
        ).one()
        sessions = await session.execute(
            select(*_columns(TelegramSession.__table__))
            .where(TelegramSession.account_id == account_id)
            .order_by(TelegramSession.created_at)
        )
        attempts = await session.execute(
            select(Attempt.kind, Attempt.at).where(of_account(account_id)).order_by(Attempt.at)
        )
        events = await session.execute(
            select(*_columns(AuditEvent.__table__))
            .where(AuditEvent.account_id == account_id)
            .order_by(AuditEvent.at, AuditEvent.id)
        )

        def rows(result: Any) -> list[dict[str, Any]]:
            return [{key: _plain(value) for key, value in row._mapping.items()} for row in result]

        return {
            "profile": {key: _plain(value) for key, value in account._mapping.items()},
            "customer_record": {key: _plain(value) for key, value in customer._mapping.items()},
            "telegram_sessions": rows(sessions),
            "attempts": rows(attempts),
            "audit_events": rows(events),
        }

    # --- erasure ----------------------------------------------------------------------------------------

    async def erase(self, account_id: int) -> str | None:
        """Delete the profile, its Telegram sessions and its attempts, and pseudonymise the audit trail:
        the events of the profile, of its customer code however it was typed ("UG100234", "ug/100234"),
        and of the customer's own Telegram accounts (the one that registered it, its owner, its sessions)
        keep what happened and when, under the profile's number only (a number no table links to anyone
        once the profile is gone), without customer code or Telegram user id. Returns the customer code,
        None if there was no profile. Events written after it are pseudonymised as they are written
        (`Accounts.add_event`).

        The customer record stays (it is the billing registry's), so the customer can register again.
        """
        session = self._session
        if session.bind.dialect.name == "postgresql":
            # Audit events being written by other transactions (a check in flight) are waited for, and new
            # ones wait for this one: none can slip between the update below and the commit, still naming
            # the profile. SQLite's one write lock does the same.
            await session.execute(text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))
        row = (
            await session.execute(
                select(Customer.customer_code, Account.registered_by, Account.owner_telegram_user_id)
                .join(Account, Account.customer_id == Customer.id)
                .where(Account.id == account_id)
            )
        ).one_or_none()
        if row is None:
            return None
        code = row.customer_code
        sessions = await session.execute(
            select(TelegramSession.telegram_user_id).where(TelegramSession.account_id == account_id)
        )
        own = {row.registered_by, row.owner_telegram_user_id, *sessions.scalars()} - {None}
        # Explicit deletes: the foreign key cascades too, but SQLite only with its pragma on.
        await session.execute(delete(TelegramSession).where(TelegramSession.account_id == account_id))
        await Attempts(session, self._clock).forget_account(account_id)
        await session.execute(delete(Account).where(Account.id == account_id))
        about = or_(
            AuditEvent.account_id == account_id,
            code_key_sql(AuditEvent.customer_code) == customer_code_key(code),
        )
        await self._erase_code_from_details(about, code)
        await session.execute(
            update(AuditEvent).where(about).values(customer_code=None, telegram_user_id=None)
        )
        # The customer's own Telegram accounts in events of no other profile (a login to a mistyped
        # address, a block for too many failures).
        await session.execute(
            update(AuditEvent)
            .where(
                AuditEvent.telegram_user_id.in_(own),
                or_(AuditEvent.account_id.is_(None), AuditEvent.account_id == account_id),
            )
            .values(telegram_user_id=None)
        )
        return code

    async def _erase_code_from_details(self, about: Any, code: str) -> None:
        """The customer code in the details of the events `about` the erased profile, in any printing (a
        registry correction's "printed code UG-100234 -> UG1-00234"), becomes ERASED_CODE."""
        wanted = customer_code_key(code)

        def scrub(detail: str) -> str:
            return _CODE_LIKE.sub(
                lambda m: ERASED_CODE if customer_code_key(m.group()) == wanted else m.group(), detail
            )

        rows = await self._session.execute(
            select(AuditEvent.id, AuditEvent.detail).where(about, AuditEvent.detail != "")
        )
        for event_id, detail in rows.all():
            if detail and (scrubbed := scrub(detail)) != detail:
                await self._session.execute(
                    update(AuditEvent).where(AuditEvent.id == event_id).values(detail=scrubbed)
                )

    # --- retention --------------------------------------------------------------------------------------

    async def prune_audit(self, older_than: timedelta) -> int:
        """Delete audit events older than `older_than` (the audit retention period); returns how many."""
        result = await self._session.execute(
            delete(AuditEvent).where(AuditEvent.at < self._clock() - older_than)
        )
        return result.rowcount  # type: ignore[attr-defined]
