"""The unit of work: the repositories on one session, in one transaction that commits only when told.

    async with UnitOfWork(db, clock) as uow:
        granted = await uow.attempts.count_since(...) < limit
        ...
        await uow.commit()

Leaving the block without `commit()` (an exception, or an early return) rolls everything back, so a use
case either records all it decided (an attempt, its outcome, a lock, the audit event) or nothing. One unit
of work is one transaction: after `commit()` it is finished and a new one must be opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from storage.accounts import Accounts
from storage.attempts import Attempts
from storage.db import WROTE, Database
from storage.inbox import HANDLING
from storage.profiles import Profiles
from storage.registry import RegistryReader
from unogas_bot.clock import utcnow


class UnitOfWork:
    """`accounts`, `attempts`, `profiles` and `registry` on one write transaction."""

    accounts: Accounts
    attempts: Attempts
    profiles: Profiles
    registry: RegistryReader

    def __init__(
        self, db: Database, clock: Callable[[], datetime] = utcnow, *, deferred: bool = False
    ) -> None:
        self._db = db
        self._clock = clock
        self._deferred = deferred  # see Database.unit: on SQLite, BEGIN just before the first write
        self._context: AbstractAsyncContextManager[AsyncSession] | None = None
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        if self._context is not None:
            raise RuntimeError("a unit of work is one transaction: open a new one")
        self._context = self._db.unit(deferred=self._deferred)
        session = self._session = await self._context.__aenter__()
        self.accounts = Accounts(session, self._clock)
        self.attempts = Attempts(session, self._clock)
        self.profiles = Profiles(session, self._clock)
        self.registry = RegistryReader(session)
        return self

    async def applied_before(self) -> bool:
        """Is this unit of work a step an earlier handling of the same update committed already (the
        update handled again after a crash)? Then nothing is written and the step counts as done: for a
        use case whose answer depends on what the step changed (logging out: the session is gone), so it
        can answer as the first handling did."""
        handling = HANDLING.get()
        if handling is None or self._session is None:
            return False
        if not await handling.done_before(self._session):
            return False
        handling.claimed += 1
        self._session = None  # finished: rolled back on leaving
        return True

    async def commit(self) -> bool:
        """Make everything done in this unit of work permanent, at once. True when it did; False when an
        earlier handling of the update committed this step already (see below), so nothing was stored now.

        A unit that wrote while an update from the inbox is handled first claims its step in that update
        (storage/inbox.py): when an earlier handling of the same update (before a crash) committed this
        step already, it rolls back instead, so the step's effects exist once; and on PostgreSQL it checks
        the leadership epoch, raising `Superseded` (and rolling back) when a newer leader exists."""
        session = self._session
        if session is None:
            raise RuntimeError("the unit of work is not open")
        self._session = None  # finished: nothing more may run in it
        wrote = session.info.get(WROTE, False)
        handling = HANDLING.get() if wrote else None
        if handling is not None and not await handling.claim(session):
            handling.claimed += 1
            await session.rollback()  # done before: the same outcome, nothing stored twice
            return False
        if wrote and self._db.fence is not None:
            await self._db.fence.check(session)
        await session.commit()
        if handling is not None:
            handling.claimed += 1
        self._db.committed(session)
        return True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        context, self._session = self._context, None
        if context is not None:
            await context.__aexit__(exc_type, exc, tb)  # closing the session rolls back anything left


@dataclass(frozen=True)
class Reading:
    """The accounts on a plain read session (no transaction to commit, no write turn): for a use case's
    look-ups that decide nothing (the profile shown after a change, the dummy hash's cost)."""

    accounts: Accounts


@asynccontextmanager
async def reading(db: Database, clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Reading]:
    async with db.session() as session:
        yield Reading(Accounts(session, clock))
