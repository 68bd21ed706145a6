"""The update inbox and the leadership epoch: each update handled once, an old leader's work void.

**The inbox** (`bot_inbox`): every update Telegram delivers is written here, sealed (unogas_bot/security/
sealing.py), before Telegram is told it arrived. A row is *waiting* until the transaction that writes the
update's effect on the conversation marks it *handled* (storage/persistence.py); the mark drops the payload,
and the small row left (a tombstone) keeps a re-delivery of the same update from being taken as new until
Telegram has confirmed it, then goes. A new leader starts with the waiting rows, oldest first.

**The epoch** (`bot_leadership`): a number each new leader raises when it takes the lock (on PostgreSQL,
bot/leader.py). The transactions of a leader check it (`Fence.check`): reading it FOR SHARE, they either
commit before a newer leader raises it (the raise waits for them) or see the newer number and roll back.
On SQLite there is no second process (an exclusive file lock), so nothing to check.

**Steps applied once.** A use case's unit of work that writes while an update from the inbox is handled
claims its position in that update (`Handling.claim`, in the same transaction): the first unit of work of
the update is position 0, the next 1, ... An update handled a second time (after a crash, by the next
leader) finds the positions its first handling committed already claimed: those units roll back instead
of committing again, so their effects (an account, an audit event, a changed phone) exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.db import Database
from storage.models import BotInbox, UTCDateTime
from unogas_bot.clock import utcnow

# Raise the epoch: run by a new leader right after it took the lock (asyncpg's $n parameters).
RAISE_EPOCH = (
    "INSERT INTO bot_leadership (bot_id, epoch, since) VALUES ($1, 1, now()) "
    "ON CONFLICT (bot_id) DO UPDATE SET epoch = bot_leadership.epoch + 1, since = now() RETURNING epoch"
)
_CHECK_EPOCH = text("SELECT epoch FROM bot_leadership WHERE bot_id = :bot FOR SHARE")
_READ_EPOCH = text("SELECT epoch FROM bot_leadership WHERE bot_id = :bot")


async def raise_epoch(db: Database, bot_id: int) -> int:
    """Raise the epoch of `bot_id` in a transaction of `db` (what a new leader does on its lock's own
    connection, bot/leader.py); the new epoch."""
    async with db.transaction() as session:
        result = await session.execute(text(RAISE_EPOCH.replace("$1", ":bot")), {"bot": bot_id})
        return int(result.scalar_one())


# Admitting a batch on PostgreSQL in one round trip: the epoch held FOR SHARE while the statement runs (no
# row is written when it is not this process's), Telegram's confirmed tombstones gone, the new rows in.
_ADMIT_POSTGRES = text(
    """
    WITH fence AS (SELECT epoch FROM bot_leadership WHERE bot_id = :bot FOR SHARE),
    allowed AS (
        SELECT 1 WHERE CAST(:epoch AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM fence WHERE epoch = :epoch)
    ),
    gone AS (
        DELETE FROM bot_inbox
        WHERE bot_id = :bot AND handled_at IS NOT NULL AND update_id < :below
            AND EXISTS (SELECT 1 FROM allowed)
    ),
    new AS (
        INSERT INTO bot_inbox (bot_id, update_id, chat_id, arrived_at, payload, replays, applied)
        SELECT :bot, t.u, t.c, :now, t.p, 0, 0
        FROM unnest(CAST(:ids AS BIGINT[]), CAST(:chats AS BIGINT[]), CAST(:payloads AS BYTEA[]))
            AS t(u, c, p)
        WHERE EXISTS (SELECT 1 FROM allowed)
        ON CONFLICT (bot_id, update_id) DO NOTHING
        RETURNING update_id
    )
    SELECT EXISTS (SELECT 1 FROM allowed), ARRAY(SELECT update_id FROM new)
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


class Superseded(Exception):
    """A newer leader exists: this process's transaction rolled back, and it must stop."""


@dataclass(frozen=True)
class Fence:
    """The epoch this process leads with (PostgreSQL)."""

    bot_id: int
    epoch: int

    async def check(self, conn: AsyncConnection | AsyncSession) -> None:
        """Raise Superseded unless the epoch is still ours; it is held (FOR SHARE) until the transaction
        ends, so a newer leader's raise waits for this transaction."""
        current = (await conn.execute(_CHECK_EPOCH, {"bot": self.bot_id})).scalar()
        if current != self.epoch:
            raise Superseded(f"bot {self.bot_id}: epoch {current} leads, this process has {self.epoch}")

    async def check_now(self, conn: AsyncConnection) -> None:
        """Raise Superseded unless the epoch is ours now: a plain read that locks nothing, for a process
        that writes nothing on it (the relay before a publish). A process frozen right after it (SIGSTOP)
        holds no lock a new leader's raise would wait for, as it would between `check` and its COMMIT."""
        current = (await conn.execute(_READ_EPOCH, {"bot": self.bot_id})).scalar()
        if current != self.epoch:
            raise Superseded(f"bot {self.bot_id}: epoch {current} leads, this process has {self.epoch}")


@dataclass
class Handling:
    """The update being handled (set by the bot's update processor): its use cases' units of work claim
    their positions in it (see the module docstring)."""

    bot_id: int
    update_id: int
    claimed: int = 0  # units of work of this handling that committed (or found themselves done already)

    async def claim(self, session: AsyncSession) -> bool:
        """Claim the next position, in `session`'s transaction: True to commit, False when an earlier
        handling of the same update committed this step already (roll back instead). The caller counts
        the position as taken (`claimed += 1`) once its transaction has ended either way."""
        table = BotInbox.__table__
        where = (table.c.bot_id == self.bot_id) & (table.c.update_id == self.update_id)
        position = self.claimed
        done = await session.execute(
            update(table).where(where, table.c.applied == position).values(applied=position + 1)
        )
        if done.rowcount:  # type: ignore[attr-defined]
            return True
        row = (await session.execute(select(table.c.applied).where(where))).first()
        return row is None  # not an inbox update (nothing to compare with): as usual

    async def done_before(self, session: AsyncSession) -> bool:
        """Did an earlier handling of this update commit its next position already?"""
        table = BotInbox.__table__
        where = (table.c.bot_id == self.bot_id) & (table.c.update_id == self.update_id)
        applied = (await session.execute(select(table.c.applied).where(where))).scalar()
        return applied is not None and applied > self.claimed


HANDLING: ContextVar[Handling | None] = ContextVar("unogas_handling", default=None)


@dataclass(frozen=True)
class Arrived:
    """An update to admit: its id, the chat it belongs to (None: none) and its sealed payload."""

    update_id: int
    chat_id: int | None
    payload: bytes


@dataclass(frozen=True)
class Waiting:
    """A row waiting to be handled, as a new leader finds it."""

    update_id: int
    payload: bytes | None
    replays: int  # how many leaders started handling it again from the inbox (and did not finish)


class InboxStore:
    """The inbox rows of one bot."""

    def __init__(self, db: Database, bot_id: int, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self.bot_id = bot_id
        self._clock = clock
        # Updates this process took (admitted as new, or replayed) whose "handled" mark is not committed
        # yet: the persistence forgets them once it is (storage/persistence.py).
        self.in_hand: set[int] = set()
        table = BotInbox.__table__
        self._admit = (  # SQLite's (PostgreSQL's admit is _ADMIT_POSTGRES)
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=["bot_id", "update_id"])
            .returning(table.c.update_id)
        )
        self._mark = (
            update(table)
            .where(
                table.c.bot_id == bindparam("bot"), table.c.update_id.in_(bindparam("ids", expanding=True))
            )
            .values(handled_at=bindparam("now"), payload=None)
        )

    async def admit(self, arrived: Sequence[Arrived], confirmed_below: int | None = None) -> set[int]:
        """Write the updates not known yet; return their ids (the others came before: taken already).
        `confirmed_below`: Telegram has been told of every update below it, so their tombstones go.

        One statement, committed on its own (an update's reply waits for it): on PostgreSQL with the
        epoch's check in it; on SQLite in this process's write turn."""
        if not arrived:
            return set()
        now = self._clock()
        if self._db.dialect == "postgresql":
            return await self._admit_postgres(arrived, confirmed_below, now)
        rows = [
            {
                "bot_id": self.bot_id,
                "update_id": a.update_id,
                "chat_id": a.chat_id,
                "arrived_at": now,
                "payload": a.payload,
                "replays": 0,
                "applied": 0,
            }
            for a in arrived
        ]
        async with self._db.write_turn(), self._db.autocommit() as conn:
            new = {row[0] for row in await conn.execute(self._admit, rows)}
            if confirmed_below is not None:
                await self._forget(conn, confirmed_below)
        return new

    async def _admit_postgres(self, arrived: Sequence[Arrived], below: int | None, now: datetime) -> set[int]:
        fence = self._db.fence
        params = {
            "bot": self.bot_id,
            "epoch": None if fence is None else fence.epoch,
            "below": below,
            "now": now,
            "ids": [a.update_id for a in arrived],
            "chats": [a.chat_id for a in arrived],
            "payloads": [a.payload for a in arrived],
        }
        async with self._db.autocommit() as conn:
            allowed, new = (await conn.execute(_ADMIT_POSTGRES, params)).one()
        if not allowed:
            current = fence.epoch if fence is not None else None
            raise Superseded(f"bot {self.bot_id}: a newer epoch leads, this process has {current}")
        return set(new)

    async def _forget(self, conn: AsyncConnection, below: int) -> None:
        table = BotInbox.__table__
        await conn.execute(
            delete(table).where(
                table.c.bot_id == self.bot_id, table.c.handled_at.is_not(None), table.c.update_id < below
            )
        )

    async def mark_handled(self, conn: AsyncConnection, update_ids: Iterable[int], now: datetime) -> None:
        """Inside the caller's transaction (the persistence's): these updates are handled; payloads go."""
        ids = list(update_ids)
        if ids:
            await conn.execute(self._mark, {"bot": self.bot_id, "ids": ids, "now": now})

    async def waiting(self) -> list[Waiting]:
        """The rows waiting to be handled, oldest first."""
        table = BotInbox.__table__
        statement = (
            select(table.c.update_id, table.c.payload, table.c.replays)
            .where(table.c.bot_id == self.bot_id, table.c.handled_at.is_(None))
            .order_by(table.c.update_id)
        )
        async with self._db.transaction() as session:
            conn = await session.connection()
            rows = [
                Waiting(int(u), None if p is None else bytes(p), int(r))
                for u, p, r in await conn.execute(statement)
            ]
            if self._db.fence is not None:
                await self._db.fence.check(conn)
        return rows

    async def started(self, update_id: int) -> None:
        """A leader starts handling a waiting update again: counted before it starts (a leader that only
        read the inbox, and stopped before handling it, does not count)."""
        table = BotInbox.__table__
        mine = (table.c.bot_id == self.bot_id) & (table.c.update_id == update_id)
        waiting = table.c.handled_at.is_(None)
        statement = update(table).where(mine, waiting).values(replays=table.c.replays + 1)
        async with self._db.write_turn(), self._db.autocommit() as conn:
            await conn.execute(statement)

    async def still_waiting(self, update_ids: Iterable[int]) -> set[int]:
        """Which of these updates are in the inbox and not handled."""
        table = BotInbox.__table__
        query = select(table.c.update_id).where(
            table.c.bot_id == self.bot_id,
            table.c.update_id.in_(list(update_ids)),
            table.c.handled_at.is_(None),
        )
        async with self._db.read() as conn:
            return {int(u) for (u,) in await conn.execute(query)}

    async def set_aside(self, update_ids: Iterable[int]) -> None:
        """Mark updates handled without handling them (unreadable, or replayed too often)."""
        async with self._db.transaction() as session:
            await self.mark_handled(await session.connection(), update_ids, self._clock())

    async def prune(self, handled_for: timedelta, waiting_for: timedelta) -> tuple[int, int]:
        """Housekeeping's safety net: tombstones older than `handled_for` and rows still waiting after
        `waiting_for` (Telegram itself forgets an update after a day); how many of each."""
        table, now = BotInbox.__table__, self._clock()
        mine = table.c.bot_id == self.bot_id
        async with self._db.transaction() as session:
            conn = await session.connection()
            handled = await conn.execute(
                delete(table).where(
                    mine, table.c.handled_at.is_not(None), table.c.handled_at < now - handled_for
                )
            )
            stale = await conn.execute(
                delete(table).where(
                    mine, table.c.handled_at.is_(None), table.c.arrived_at < now - waiting_for
                )
            )
        return handled.rowcount, stale.rowcount  # type: ignore[attr-defined]

    async def counts(self) -> tuple[int, int]:
        """(rows waiting, tombstones)."""
        table = BotInbox.__table__
        query = select(
            func.count().filter(table.c.handled_at.is_(None)),
            func.count().filter(table.c.handled_at.is_not(None)),
        ).where(table.c.bot_id == self.bot_id)
        async with self._db.read() as conn:
            waiting, handled = (await conn.execute(query)).one()
        return int(waiting or 0), int(handled or 0)
