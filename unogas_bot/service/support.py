"""The support tools' use cases (`unogas-bot accounts ...`): look-ups, and the two changes a support
operator makes, each with its audit event in one unit of work. Inside `acting_operator` every event
names the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from storage.account_store import AccountStore
from storage.db import Database
from storage.operator import acting_operator
from storage.registry import CustomerRegistry
from storage.unit_of_work import UnitOfWork
from unogas_bot.clock import utcnow
from unogas_bot.domain import AccountNotFound, AccountView, AuditEntry, CustomerRecord
from unogas_bot.service.audit import audit

__all__ = ["Support", "acting_operator"]


class Support:
    """What the support commands ask of the accounts, on the database `db`."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._store = AccountStore(db, clock=clock)

    # --- look-ups (one read each) ------------------------------------------------------------------

    async def find(self, email_or_code: str) -> AccountView | None:
        """An account by e-mail address (anything with an "@") or by customer code."""
        return await self._store.find(email_or_code)

    async def get(self, account_id: int) -> AccountView | None:
        return await self._store.get(account_id)

    async def get_by_email(self, email: str) -> AccountView | None:
        return await self._store.get_by_email(email)

    async def get_by_customer_code(self, customer_code: str) -> AccountView | None:
        return await self._store.get_by_customer_code(customer_code)

    async def count(self) -> int:
        return await self._store.count()

    async def list_accounts(self, page: int, page_size: int = 20) -> list[AccountView]:
        return await self._store.list_accounts(page, page_size)

    async def recent_events(self, account_id: int, limit: int = 20) -> list[AuditEntry]:
        return await self._store.recent_events(account_id, limit)

    async def audit_trail(
        self, *, account_id: int | None = None, customer_code: str | None = None, limit: int = 500
    ) -> list[AuditEntry]:
        return await self._store.audit_trail(account_id=account_id, customer_code=customer_code, limit=limit)

    async def customer(self, customer_code: str) -> CustomerRecord | None:
        """The registry's record of a customer code (with or without a profile)."""
        return await CustomerRegistry(self._db, clock=self._clock).get(customer_code)

    # --- changes (one unit of work each, with its audit event) ----------------------------------------

    async def reveal_tax_code(self, account: AccountView) -> bool:
        """Record that the operator is shown the profile's tax code in full. False when the profile is
        gone (the customer erased it since it was looked up): then it is not to be shown."""
        async with UnitOfWork(self._db, self._clock) as uow:
            if await uow.accounts.get(account.id) is None:
                return False
            await audit(uow, "tax_code_revealed", account)
            await uow.commit()
        return True

    async def unlock(self, account_id: int) -> bool:
        """Lift both locks and forget the account's attempts; audited "unlocked". False when the profile
        is gone (erased since it was looked up): nothing changed, nothing audited."""
        async with UnitOfWork(self._db, self._clock) as uow:
            try:
                code = await uow.accounts.unlock(account_id)
            except AccountNotFound:
                return False
            await audit(uow, "unlocked", None, account_id=account_id, customer_code=code)
            await uow.commit()
        return True
