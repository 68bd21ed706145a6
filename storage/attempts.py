"""A persistent log of attempts, for rate limits that survive restarts and hold under concurrency.

An attempt is a (kind, key, time) triple: kind names the limited action ("verify", "login_account",
"login_user", "recovery", ...), key what it is limited per (a Telegram user, an account, ...). Attempts that
concern an account use ``account_key(account_id)`` as key, or a key of one Telegram account's attempts on
it, ``pair_key(account_key(account_id), user)``: an unlock and the erasure remove exactly those
(``of_account``, `Attempts.forget_account`).

`Attempts` works on the session of a unit of work (storage/unit_of_work.py). A limit is kept by
*reserving*: inside one write transaction the keys are locked (`lock`), the window is counted and, when
there is room, the attempt is recorded before the guarded work runs. Two transactions that lock the same
key run one after the other, so however many attempts arrive at once, no more than the limit are granted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, Subquery, bindparam, delete, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Lookup
from storage.models import Attempt, UTCDateTime
from unogas_bot.clock import utcnow
from unogas_bot.domain.keys import PAIR_SEPARATOR, account_key

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
# The larger of two keys' counts in one statement (the limits kept per Telegram user and per customer).
_MOST_OF_TWO = Lookup(
    select(func.count(), Attempt.key)
    .where(
        Attempt.kind == bindparam("kind"),
        or_(Attempt.key == bindparam("first"), Attempt.key == bindparam("second")),
        Attempt.at > bindparam("since"),
    )
    .group_by(Attempt.key)
)


def window_count(key_param: str) -> Any:
    """A scalar subquery counting the attempts of kind ``:kind`` under the key ``:<key_param>`` since
    ``:since``: a part of the look-ups that read a limit's count with what it guards, in one statement."""
    return (
        select(func.count())
        .where(
            Attempt.kind == bindparam("kind"),
            Attempt.key == bindparam(key_param),
            Attempt.at > bindparam("since"),
        )
        .scalar_subquery()
    )


# PostgreSQL: a transaction-level advisory lock per key, released at commit or rollback. All the keys of
# one call in one statement (one round trip, not one per key), taken in the order given.
_PG_LOCK = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k.key, 0))) FROM "
    "(SELECT key FROM unnest(CAST(:keys AS TEXT[])) WITH ORDINALITY AS u(key, n) ORDER BY n) AS k"
)


# `_PG_LOCK` with its result named, for `keys_locked`.
_KEYS_LOCKED = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k.key, 0))) AS locked FROM "
    "(SELECT key FROM unnest(CAST(:lock_keys AS TEXT[])) WITH ORDINALITY AS u(key, n) ORDER BY n) AS k"
).columns(locked=BigInteger)


def lock_keys(keys: Iterable[str]) -> list[str]:
    """The keys as `Attempts.lock` takes them: each once, sorted (two transactions cannot deadlock)."""
    return sorted(set(keys))


def keys_locked() -> Subquery:
    """PostgreSQL: a one-row subquery that locks the keys ``:lock_keys`` (see `lock_keys`) as
    `Attempts.lock` does, and yields how many it locked (``locked``): a look-up that selects from it and
    counts with `locked_window_count` locks and counts in ONE statement, one round trip instead of two.

    Only the counts are read after the lock: the rest of such a look-up reads as of the statement's start,
    so it must be data the lock does not guard (the registry's entry, whether a customer has a profile or
    an address is taken: written without these keys' locks, and an address is the unique constraint's at
    «Salva» in any case)."""
    return _KEYS_LOCKED.subquery("locked_keys")


def locked_window_count(key_param: str, locked: Subquery) -> Any:
    """`window_count` read after the lock of `keys_locked()` (PostgreSQL). A statement reads from a snapshot
    taken when it starts, before the lock it waits for is granted: the count is read instead by the function
    ``unogas_count_since`` (migration 0009), whose query takes its own snapshot when it runs, and its last
    argument, the lock's result, makes it run after the lock. So it sees every attempt committed by the
    transactions the lock waited for, as the count of a statement after `Attempts.lock` does."""
    return func.unogas_count_since(
        bindparam("kind", type_=String()),
        bindparam(key_param, type_=String()),
        bindparam("since", type_=UTCDateTime()),
        locked.c.locked,
        type_=BigInteger(),
    )


# The character after PAIR_SEPARATOR in code point order: the keys that start with "<key>|" are those
# between "<key>|" and "<key>}", a range an index can read (LIKE is case-insensitive on SQLite).
_AFTER_SEPARATOR = chr(ord(PAIR_SEPARATOR) + 1)


def of_account(account_id: int) -> Any:
    """SQL condition: the attempt is the account's (its key, or one Telegram user's key on it)."""
    key = account_key(account_id)
    return or_(
        Attempt.key == key,
        (Attempt.key >= key + PAIR_SEPARATOR) & (Attempt.key < key + _AFTER_SEPARATOR),
    )


class Attempts:
    """Count, reserve and forget attempts inside the caller's transaction."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    async def lock(self, *keys: str) -> None:
        """Serialise this transaction with every other one that locks any of `keys`, until it ends.

        On SQLite every write transaction already holds the database's one write lock (BEGIN IMMEDIATE),
        so there is nothing more to take. Keys are locked in sorted order: two transactions locking the
        same pair cannot deadlock.
        """
        if self._session.bind.dialect.name != "postgresql":
            return
        await self._session.execute(_PG_LOCK, {"keys": lock_keys(keys)})

    async def add(self, kind: str, key: str) -> int:
        """Record one attempt now; returns its id (so a reservation can be taken back)."""
        result = await self._session.execute(
            insert(Attempt).values(kind=kind, key=key, at=self._clock()).returning(Attempt.id)
        )
        return int(result.scalar_one())

    async def take_back(self, ids: Iterable[int]) -> None:
        """Forget the attempts with these ids (a reservation whose attempt turned out not to count)."""
        wanted = list(ids)
        if wanted:
            await self._session.execute(delete(Attempt).where(Attempt.id.in_(wanted)))

    async def count_since(self, kind: str, key: str, window: timedelta) -> int:
        """How many attempts of this kind and key happened in the last ``window``."""
        conn = await self._session.connection()
        ((count,),) = await _COUNT_SINCE.rows(conn, kind=kind, key=key, since=self._clock() - window)
        return int(count)

    async def most_since(self, kind: str, first: str, second: str, window: timedelta) -> int:
        """The larger of the two keys' counts of `kind` in the last ``window``, in one look-up."""
        conn = await self._session.connection()
        rows = await _MOST_OF_TWO.rows(
            conn, kind=kind, first=first, second=second, since=self._clock() - window
        )
        return max((int(count) for count, _key in rows), default=0)

    async def oldest_in_window(self, kind: str, key: str, window: timedelta) -> datetime | None:
        """The oldest attempt still inside the window (it leaves the window at ``oldest + window``)."""
        result = await self._session.execute(
            select(func.min(Attempt.at)).where(
                Attempt.kind == kind, Attempt.key == key, Attempt.at > self._clock() - window
            )
        )
        return result.scalar_one()

    async def held_until(self, kind: str, key: str, duration: timedelta) -> datetime | None:
        """When a hold recorded as attempts of `kind` (each lasting `duration`) ends, or None if none holds.

        Locks that must look the same whatever they protect (a registered address or an unknown one) are
        kept this way."""
        started = await self.oldest_in_window(kind, key, duration)
        return None if started is None else started + duration

    async def clear(self, kind: str, key: str) -> None:
        """Forget every attempt of this kind and key (e.g. after a successful login)."""
        await self._session.execute(delete(Attempt).where(Attempt.kind == kind, Attempt.key == key))

    async def forget_account(self, account_id: int) -> None:
        """Forget every attempt of any kind on the account, its own and each Telegram user's on it (an
        account unlocked or erased)."""
        await self._session.execute(delete(Attempt).where(of_account(account_id)))

    async def prune(self, older_than: timedelta) -> int:
        """Delete attempts older than ``older_than``; returns how many."""
        result = await self._session.execute(delete(Attempt).where(Attempt.at < self._clock() - older_than))
        return result.rowcount  # type: ignore[attr-defined]
