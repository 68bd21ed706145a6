"""What the use cases and the handlers need, in one object: `Services`.

The handlers reach storage only through the use cases: `Services` hands out units of work and read
views to those, no repository of its own. Everything is reached through here, never through globals, so
tests and the benchmark can build as many independent bots as they like in one process. No Telegram in
it: the bot carries it (bot/application.py) and hands it to the handlers as `context.services`
(conversations/context.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime

from storage import outbox
from storage.db import Database
from storage.unit_of_work import Reading, UnitOfWork, reading
from unogas_bot.clock import utcnow
from unogas_bot.config import Settings
from unogas_bot.security.hash_budget import HashBudget
from unogas_bot.security.hashing import EphemeralMac, Hasher


@dataclass
class Services:
    settings: Settings
    db: Database
    hasher: Hasher
    clock: Callable[[], datetime] = utcnow
    mac: EphemeralMac = field(default_factory=EphemeralMac)
    # Take one unit before every bcrypt hash or verify a user causes (raises HashBudgetExceeded).
    hash_budget: HashBudget = field(default_factory=HashBudget)

    @classmethod
    def create(
        cls,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime] = utcnow,
        hasher: Hasher | None = None,
    ) -> Services:
        """The services on `db`; `hasher` replaces the one `settings` describe (the benchmark counts)."""
        outbox.configure(db.engine, share_credentials=settings.events_share_credentials)  # issue 24
        return cls(
            settings=settings,
            db=db,
            hasher=hasher or Hasher(settings.bcrypt_rounds, settings.hash_workers),
            clock=clock,
            hash_budget=HashBudget(
                settings.limits.hash_budget_per_user, settings.limits.hash_budget_window, clock
            ),
        )

    def uow(self, *, deferred: bool = False) -> UnitOfWork:
        """A new unit of work on the bot's database (one transaction; see storage/unit_of_work.py).
        `deferred`: for a unit that usually writes nothing (see storage.db.Database.unit)."""
        return UnitOfWork(self.db, self.clock, deferred=deferred)

    def reading(self) -> AbstractAsyncContextManager[Reading]:
        """The accounts on a plain read session: look-ups that decide nothing (storage/unit_of_work.py)."""
        return reading(self.db, self.clock)

    async def close(self) -> None:
        self.hasher.close()
        await self.db.dispose()
