"""What the handlers need from the rest of the bot, reachable as `context.services`.

Handlers get repositories and the hasher through here, never by importing globals, so tests and the
benchmark can build as many independent bots as they like in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from storage.accounts import AccountRepository
from storage.attempts import AttemptLog
from storage.db import Database
from storage.registry import CustomerRegistry
from storage.unit_of_work import UnitOfWork
from unogas_bot.config import Settings
from unogas_bot.hash_budget import HashBudget
from unogas_bot.hashing import EphemeralMac, Hasher
from unogas_bot.texts import language_for


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: CustomerRegistry
    accounts: AccountRepository
    attempts: AttemptLog
    hasher: Hasher
    clock: Callable[[], datetime] = utc_now
    mac: EphemeralMac = field(default_factory=EphemeralMac)
    # Take one unit before every bcrypt hash or verify a user causes (raises HashBudgetExceeded).
    hash_budget: HashBudget = field(default_factory=HashBudget)

    @classmethod
    def create(
        cls,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime] = utc_now,
        hasher: Hasher | None = None,
    ) -> Services:
        """The services on `db`; `hasher` replaces the one `settings` describe (the benchmark counts)."""
        return cls(
            settings=settings,
            db=db,
            registry=CustomerRegistry(db),
            accounts=AccountRepository(db, clock=clock),
            attempts=AttemptLog(db, clock=clock),
            hasher=hasher or Hasher(settings.bcrypt_rounds, settings.hash_workers),
            clock=clock,
            hash_budget=HashBudget(settings.hash_budget_per_user, settings.hash_budget_window, clock),
        )

    def uow(self) -> UnitOfWork:
        """A new unit of work on the bot's database (one transaction; see storage/unit_of_work.py)."""
        return UnitOfWork(self.db, self.clock)

    async def close(self) -> None:
        self.hasher.close()
        await self.db.dispose()


class UnogasApplication(Application):
    """PTB's Application carrying our services (PTB's own class has __slots__ and takes no extras)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def update_persistence(self) -> None:
        """PTB hands the changed data to the persistence, then it is flushed: storage/persistence.py notes
        changes in memory and writes them in one transaction when flushed. PTB calls this every
        `persistence.update_interval` seconds and when the application stops."""
        await super().update_persistence()
        if self.persistence is not None:
            try:
                await self.persistence.flush()  # an unreachable database is logged there and retried later
            except Exception as exc:
                await self.process_error(update=None, error=exc)


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """The callback context our handlers receive: adds `services` and the user's language."""

    @property
    def services(self) -> Services:
        return self.application.services  # type: ignore[attr-defined]

    def language_of(self, update: object) -> str:
        """The language to answer `update`'s user in: the one chosen with /lingua, else Telegram's."""
        chosen = self.user_data.get("lang") if self.user_data is not None else None
        if chosen:
            return chosen
        user = update.effective_user if isinstance(update, Update) else None
        return language_for(user.language_code if user else None)
