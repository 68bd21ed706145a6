"""`Accounts` on a bare `Database`, one transaction per call: the look-ups of the support tools and the
session look-up (unogas_bot/service/session.py, support.py). Not part of `Services`: every entry goes
through a use case, and whatever must be atomic with an audit event goes through a unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from storage.accounts import Accounts
from storage.db import Database
from unogas_bot.clock import utcnow
from unogas_bot.domain import AccountView, AuditEntry, normalize_email


class AccountStore:
    """`Accounts` on a bare `Database`: each call is its own transaction (reads: a plain session).

    For the support tools, housekeeping and the read-only commands; anything that must be atomic with
    other changes (a limit, an audit event) goes through a unit of work instead.
    """

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Accounts]:
        async with self._db.session() as session:
            yield Accounts(session, self._clock)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[Accounts]:
        async with self._db.transaction() as session:
            yield Accounts(session, self._clock)

    async def get(self, account_id: int) -> AccountView | None:
        async with self._reading() as accounts:
            return await accounts.get(account_id)

    async def get_by_email(self, email: str) -> AccountView | None:
        async with self._reading() as accounts:
            return await accounts.get_by_email(email)

    async def get_by_customer_code(self, customer_code: str) -> AccountView | None:
        async with self._reading() as accounts:
            return await accounts.get_by_customer_code(customer_code)

    async def find(self, email_or_code: str) -> AccountView | None:
        """Look an account up by e-mail address (anything with an "@") or by customer code."""
        if "@" in normalize_email(email_or_code):  # a full-width "＠" too
            return await self.get_by_email(email_or_code)
        return await self.get_by_customer_code(email_or_code)

    async def session_account(self, telegram_user_id: int) -> AccountView | None:
        """The account the Telegram user is logged into, or None; an expired session is deleted."""
        async with self._reading() as accounts:
            account, expired = await accounts.session_lookup(telegram_user_id)
        if not expired:
            return account
        async with self._writing() as accounts:
            await accounts.end_expired_session(telegram_user_id)
        return None

    async def count(self) -> int:
        async with self._reading() as accounts:
            return await accounts.count()

    async def list_accounts(self, page: int, page_size: int = 20) -> list[AccountView]:
        async with self._reading() as accounts:
            return await accounts.list_accounts(page, page_size)

    async def recent_events(self, account_id: int, limit: int = 20) -> list[AuditEntry]:
        async with self._reading() as accounts:
            return await accounts.recent_events(account_id, limit)

    async def audit_trail(
        self, *, account_id: int | None = None, customer_code: str | None = None, limit: int = 500
    ) -> list[AuditEntry]:
        async with self._reading() as accounts:
            return await accounts.audit_trail(account_id=account_id, customer_code=customer_code, limit=limit)
