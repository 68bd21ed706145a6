"""The audit trail's rows: written by the use cases through service/audit.py (its one writer), read by the
support tools and the tests. A part of `Accounts` (storage/accounts.py), on the caller's session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.db import AUDITED
from storage.models import CUSTOMER_CODE_LEN, DETAIL_LEN, Account, AuditEvent
from storage.operator import operator_detail
from unogas_bot.domain import AuditEntry, customer_code_key


class AuditTrail:
    """Appending to and reading the audit trail inside the caller's transaction."""

    _session: AsyncSession
    _clock: Callable[[], datetime]

    async def add_event(
        self,
        event: str,
        *,
        account_id: int | None = None,
        customer_code: str | None = None,
        telegram_user_id: int | None = None,
        detail: str = "",
    ) -> None:
        """Append an audit event. ``detail`` is short free text and must never contain a secret; inside
        `acting_operator` it also names the support operator."""
        detail = operator_detail(detail)
        self._session.info.setdefault(AUDITED, []).append(event)
        # Cut to the column sizes: an audit record must never make the audited action fail.
        code = customer_code[:CUSTOMER_CODE_LEN] if customer_code else customer_code
        # An event about a profile erased meanwhile (a check in flight during the erasure) is written
        # pseudonymised, as the erasure left the others: its number only. One statement of one shape
        # whatever the values (the login of an unknown address runs the same SQL as a known one's).
        number = literal(account_id, AuditEvent.account_id.type)
        alive = or_(number.is_(None), select(Account.id).where(Account.id == number).exists())
        await self._session.execute(
            insert(AuditEvent).values(
                at=self._clock(),
                event=event,
                account_id=account_id,
                customer_code=case((alive, literal(code, AuditEvent.customer_code.type)), else_=None),
                telegram_user_id=case((alive, literal(telegram_user_id, AuditEvent.telegram_user_id.type))),
                detail=detail[:DETAIL_LEN],
            )
        )
        # issue 24: an account change writes its event to the outbox in this same transaction.
        await outbox.on_audit(self._session, self._clock, event, account_id)

    async def recent_events(self, account_id: int, limit: int = 20) -> list[AuditEntry]:
        """The account's latest audit events, newest first (also after the account was deleted)."""
        rows = await self._session.execute(
            select(
                AuditEvent.at,
                AuditEvent.event,
                AuditEvent.telegram_user_id,
                AuditEvent.detail,
                AuditEvent.account_id,
                AuditEvent.customer_code,
            )
            .where(AuditEvent.account_id == account_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
        return [
            AuditEntry(row.at, row.event, row.telegram_user_id, row.detail, row.account_id, row.customer_code)
            for row in rows
        ]

    async def audit_trail(
        self, *, account_id: int | None = None, customer_code: str | None = None, limit: int = 500
    ) -> list[AuditEntry]:
        """The events of profile `account_id` or of customer `customer_code` (either may be None), oldest
        first, with the newest `limit` kept. Also after the profile was erased: its events stay under
        its number (without code or Telegram user); events before any profile (a failed identity
        check) carry only the code."""
        conditions: list[Any] = []
        if account_id is not None:
            conditions.append(AuditEvent.account_id == account_id)
        if customer_code is not None:
            conditions.append(code_key_sql(AuditEvent.customer_code) == customer_code_key(customer_code))
        if not conditions:
            return []
        newest = (
            select(AuditEvent)
            .where(or_(*conditions))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
            .subquery()
        )
        rows = await self._session.execute(select(newest).order_by(newest.c.at, newest.c.id))
        return [
            AuditEntry(row.at, row.event, row.telegram_user_id, row.detail, row.account_id, row.customer_code)
            for row in rows
        ]


def code_key_sql(column: Any) -> Any:
    """`customer_code_key` in SQL (SQLite and PostgreSQL alike): audit rows keep the code as it was
    given, so "UG-100234" and "UG100234" must still meet."""
    for sign in ("-", "/", " "):
        column = func.replace(column, sign, "")
    return func.upper(column)
