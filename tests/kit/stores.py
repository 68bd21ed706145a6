"""What tests look at and set up directly in storage, beside the use cases: `Services` hands the handlers
no repository (every entry goes through a use case), so a test reaches the stores through here.

`KitAccounts` is storage's `AccountStore` plus the writes tests set up with, each one unit of work that
writes its audit event as the use cases do (through service.audit, the trail's one writer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.account_store import AccountStore
from storage.attempts import Attempts
from storage.db import Database
from storage.registry import CustomerRegistry
from storage.unit_of_work import UnitOfWork
from unogas_bot.clock import utcnow
from unogas_bot.domain import AccountView, NewAccount
from unogas_bot.service.audit import audit
from unogas_bot.service.context import Services


class KitAccounts(AccountStore):
    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self._db, self._clock)

    async def link_session(self, account_id: int, telegram_user_id: int, ttl: timedelta) -> None:
        async with self._uow() as uow:
            await uow.accounts.link_session(account_id, telegram_user_id, ttl)
            await uow.commit()

    async def set_login_lock(self, account_id: int, until: datetime | None) -> None:
        async with self._uow() as uow:
            await uow.accounts.set_login_lock(account_id, until)
            await uow.commit()

    async def set_recovery_lock(self, account_id: int, until: datetime | None) -> None:
        async with self._uow() as uow:
            await uow.accounts.set_recovery_lock(account_id, until)
            await uow.commit()

    async def register(self, new: NewAccount) -> AccountView:
        """As service.registration.register stores it: the account and its "registered" event."""
        async with self._uow() as uow:
            account = await uow.accounts.register(new)
            await audit(uow, "registered", account, new.telegram_user_id)
            await uow.commit()
        return account

    async def change_password(
        self, account_id: int, new_hash: str, *, telegram_user_id: int | None = None
    ) -> None:
        """As a recovery stores it: every session ends; "password_recovered"."""
        async with self._uow() as uow:
            code = await uow.accounts.change_password(account_id, new_hash)
            await audit(
                uow, "password_recovered", None, telegram_user_id, account_id=account_id, customer_code=code
            )
            await uow.commit()

    async def unlock(self, account_id: int) -> None:
        async with self._uow() as uow:
            code = await uow.accounts.unlock(account_id)
            await audit(uow, "unlocked", None, account_id=account_id, customer_code=code)
            await uow.commit()

    async def end_session(self, telegram_user_id: int) -> bool:
        async with self._uow() as uow:
            ended = await uow.accounts.end_session(telegram_user_id)
            await uow.commit()
        return ended

    async def end_all_sessions(self, account_id: int) -> int:
        async with self._uow() as uow:
            ended = await uow.accounts.end_all_sessions(account_id)
            await uow.commit()
        return ended

    async def prune_sessions(self) -> int:
        async with self._uow() as uow:
            pruned = await uow.accounts.prune_sessions()
            await uow.commit()
        return pruned

    async def record_event(self, event: str, **where: Any) -> None:
        async with self._uow() as uow:
            await audit(
                uow,
                event,
                None,
                where.get("telegram_user_id"),
                where.get("detail", ""),
                account_id=where.get("account_id"),
                customer_code=where.get("customer_code"),
            )
            await uow.commit()


class AttemptLog:
    """`Attempts` on a bare database, one transaction per call: what tests record and count directly."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def record(self, kind: str, key: str) -> None:
        """Log one attempt now."""
        async with self._db.transaction() as session:
            await Attempts(session, self._clock).add(kind, key)

    async def count_since(self, kind: str, key: str, window: timedelta) -> int:
        """How many attempts of this kind and key happened in the last ``window``."""
        async with self._db.session() as session:
            return await Attempts(session, self._clock).count_since(kind, key, window)

    async def oldest_in_window(self, kind: str, key: str, window: timedelta) -> datetime | None:
        """The oldest attempt still inside the window (it leaves the window at ``oldest + window``)."""
        async with self._db.session() as session:
            return await Attempts(session, self._clock).oldest_in_window(kind, key, window)

    async def clear(self, kind: str, key: str) -> None:
        """Forget every attempt of this kind and key."""
        async with self._db.transaction() as session:
            await Attempts(session, self._clock).clear(kind, key)

    async def prune(self, older_than: timedelta) -> int:
        """Delete attempts older than ``older_than``; returns how many. Run it now and then."""
        async with self._db.transaction() as session:
            return await Attempts(session, self._clock).prune(older_than)


@dataclass(frozen=True)
class Stores:
    accounts: KitAccounts
    attempts: AttemptLog
    registry: CustomerRegistry


def stores(services: Services) -> Stores:
    """The stores on `services`' database and clock, one transaction per call."""
    return Stores(
        KitAccounts(services.db, clock=services.clock),
        AttemptLog(services.db, clock=services.clock),
        CustomerRegistry(services.db),
    )
