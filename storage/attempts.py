"""A persistent log of attempts, for rate limits that survive restarts.

An attempt is a (kind, key, time) triple: kind names the limited action ("verify", "login_account",
"login_user", "recovery", ...), key what it is limited per (a Telegram user, an account, ...). Attempts that
concern an account should use ``account_key(account_id)`` as key: ``AccountRepository.unlock`` and
``delete`` remove exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select

from storage.db import Database, Lookup, utcnow
from storage.models import Attempt

# Counted before every identity check and login: a Lookup (one driver call on SQLite).
_COUNT_SINCE = Lookup(
    select(func.count())
    .select_from(Attempt)
    .where(
        Attempt.kind == bindparam("kind"),
        Attempt.key == bindparam("key"),
        Attempt.at > bindparam("since"),
    )
)


def account_key(account_id: int) -> str:
    """The attempt key for everything limited per account (distinct from Telegram-user keys)."""
    return f"account:{account_id}"


def telegram_key(telegram_user_id: int) -> str:
    """The attempt key for everything limited per Telegram user."""
    return f"tg:{telegram_user_id}"


class AttemptLog:
    """Record and count attempts in sliding time windows."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def record(self, kind: str, key: str) -> None:
        """Log one attempt now."""
        async with self._db.transaction() as session:
            await session.execute(insert(Attempt).values(kind=kind, key=key, at=self._clock()))

    async def count_since(self, kind: str, key: str, window: timedelta) -> int:
        """How many attempts of this kind and key happened in the last ``window``."""
        since = self._clock() - window
        async with self._db.read() as conn:
            ((count,),) = await _COUNT_SINCE.rows(conn, kind=kind, key=key, since=since)
            return int(count)

    async def oldest_in_window(self, kind: str, key: str, window: timedelta) -> datetime | None:
        """The oldest attempt still inside the window (it leaves the window at ``oldest + window``)."""
        since = self._clock() - window
        async with self._db.session() as session:
            result = await session.execute(
                select(func.min(Attempt.at)).where(
                    Attempt.kind == kind, Attempt.key == key, Attempt.at > since
                )
            )
            return result.scalar_one()

    async def clear(self, kind: str, key: str) -> None:
        """Forget every attempt of this kind and key (e.g. after a successful login)."""
        async with self._db.transaction() as session:
            await session.execute(delete(Attempt).where(Attempt.kind == kind, Attempt.key == key))

    async def prune(self, older_than: timedelta) -> int:
        """Delete attempts older than ``older_than``; returns how many. Run it now and then."""
        cutoff = self._clock() - older_than
        async with self._db.transaction() as session:
            result = await session.execute(delete(Attempt).where(Attempt.at < cutoff))
            return result.rowcount  # type: ignore[attr-defined]
