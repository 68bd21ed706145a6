"""The bot's side of the update inbox (storage/inbox.py): Telegram updates in, sealed rows out, and back.

`admit` writes updates before Telegram is told they arrived (the polling loop before its next getUpdates,
the webhook before its 200) and returns those that are new: an update Telegram delivers again, or a new
leader fetches again, is not handled a second time. Callers arriving while a write is in progress share the
next one.

`replay` is what a new leader does first: the updates left waiting by the last one, oldest first, so each
chat's go before its new ones. An update that does not open (INBOX_KEY or the token changed) or that
several leaders in a row started and never finished (one that crashes the process) is set aside with a log
line, instead of stopping every leader after it. A leader counts as having started an update when it
begins handling it (`starting`), not when it reads the inbox: leaders that stopped before (a webhook that
could not be registered, leadership lost again at once) never set an update aside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from telegram import Update
from telegram.ext import ExtBot

from storage.db import database_unavailable
from storage.inbox import HANDLING, Arrived, Handling, InboxStore
from unogas_bot.bot import metrics
from unogas_bot.security.sealing import Sealer, SealError

log = logging.getLogger(__name__)

# Leaders that may start from an update without finishing it before it is set aside.
MAX_REPLAYS = 5
# Updates whose write failed without telling whether it committed, remembered to be checked when they
# come again (see `_recover`); beyond this many the oldest are forgotten (a long outage: the next leader's
# replay still finds them).
UNCERTAIN_KEPT = 10_000

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def chat_of(update: Update) -> int | None:
    """The chat an update belongs to (the user's, for an update without one)."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    return update.effective_user.id if update.effective_user is not None else None


class Inbox:
    """The inbox of one bot: `store` on the database, payloads sealed with `sealer`."""

    def __init__(self, store: InboxStore, sealer: Sealer) -> None:
        self.store = store
        self.bot_id = store.bot_id
        self._sealer = sealer
        self._queue: list[tuple[list[Arrived], int | None, asyncio.Future[set[int]]]] = []
        self._writer: asyncio.Future[None] | None = None
        self.duplicates = 0  # updates delivered again and not handled again, since start
        self.replayed = 0  # updates a takeover started from, since start
        self._replaying: set[int] = set()  # replayed updates not started yet (see `starting`)
        self._uncertain: dict[int, None] = {}  # see `_recover`, oldest first

    def seal(self, update: Update, raw: dict[str, Any] | None = None) -> Arrived:
        data = raw if raw is not None else update.to_dict()
        # A lone surrogate is valid in a JSON string and has no UTF-8 form: kept as it came, not refused.
        plain = _ENCODE(data).encode("utf-8", "surrogatepass")
        payload = self._sealer.seal(plain, self.bot_id, update.update_id)
        return Arrived(update.update_id, chat_of(update), payload)

    async def admit(
        self,
        updates: Sequence[Update],
        raw: Sequence[dict[str, Any]] | None = None,
        confirmed_below: int | None = None,
    ) -> list[Update]:
        """Write `updates` (with their JSON as received, `raw`, when there is one) and return the new ones,
        in order. Raises what the database raises: nothing is then taken, and the caller must not confirm
        the updates to Telegram."""
        arrived = [self.seal(u, raw[i] if raw is not None else None) for i, u in enumerate(updates)]
        new = await self._write(arrived, confirmed_below)
        taken = []
        for update in updates:  # the same update twice in one call: taken once
            if update.update_id in new:
                new.discard(update.update_id)
                taken.append(update)
        if len(taken) < len(updates):
            self.duplicates += len(updates) - len(taken)
            metrics.INBOX_DUPLICATES.inc(len(updates) - len(taken))
        return taken

    async def take(self, update: Update, raw: dict[str, Any] | None = None) -> bool:
        """Admit one update (the offline Simulator's hook): True if it is new."""
        return bool(await self.admit([update], None if raw is None else [raw]))

    async def _write(self, arrived: list[Arrived], confirmed_below: int | None) -> set[int]:
        """Group commit: updates arriving while a write is in progress go together in the next one."""
        mine: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
        self._queue.append((arrived, confirmed_below, mine))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())
        return await mine

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            below = max((b for _, b, _ in batch if b is not None), default=None)
            arrived = [a for rows, _, _ in batch for a in rows]
            try:
                new = await self.store.admit(arrived, below)
                if self._uncertain:
                    new |= await self._recover({a.update_id for a in arrived} - new)
            except BaseException as exc:
                self._doubt(a.update_id for a in arrived)
                for _, _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                # An id is new for the first caller that brought it only: the same update delivered
                # twice at once (a webhook retry racing the first delivery) is taken once.
                self.store.in_hand |= new
                for rows, _, waiter in batch:
                    mine = {a.update_id for a in rows} & new
                    new -= mine
                    if not waiter.done():
                        waiter.set_result(mine)

    def _doubt(self, update_ids: Iterable[int]) -> None:
        """A write of these updates failed: it may have committed all the same (the connection broke
        after the server committed, before its answer came back)."""
        for update_id in update_ids:
            if update_id not in self.store.in_hand:
                self._uncertain[update_id] = None
        while len(self._uncertain) > UNCERTAIN_KEPT:
            del self._uncertain[next(iter(self._uncertain))]

    async def _recover(self, known: set[int]) -> set[int]:
        """Of the updates found in the inbox already (`known`), those whose earlier write this process
        could not confirm and that nobody handled: they are not duplicates of a handled update but the
        same delivery again (the webhook answered 503; polling fetched the batch again), so they are new.
        Without this they would wait unanswered until the next leader."""
        doubtful = [u for u in known if u in self._uncertain]
        if not doubtful:
            return set()
        waiting = await self.store.still_waiting(doubtful)
        for update_id in doubtful:
            self._uncertain.pop(update_id, None)
        return {u for u in waiting if u not in self.store.in_hand}

    async def replay(self, bot: ExtBot[Any] | Any) -> list[Update]:
        """The updates the last leader left waiting, oldest first (see the module docstring)."""
        waiting = await self.store.waiting()
        updates: list[Update] = []
        unreadable: list[int] = []
        crashing: list[int] = []
        for row in waiting:
            if row.replays >= MAX_REPLAYS:
                crashing.append(row.update_id)
                continue
            try:
                if row.payload is None:
                    raise SealError("no payload")
                plain = self._sealer.open(row.payload, self.bot_id, row.update_id)
                data = json.loads(plain.decode("utf-8", "surrogatepass"))
                update = Update.de_json(data, bot)
            except (SealError, ValueError, TypeError, KeyError):
                unreadable.append(row.update_id)
                continue
            if isinstance(bot, ExtBot):
                bot.insert_callback_data(update)
            updates.append(update)
            self._replaying.add(row.update_id)
            self.store.in_hand.add(row.update_id)
        if unreadable:
            log.warning(
                "inbox: %d waiting update(s) could not be opened (INBOX_KEY or the bot token changed?); "
                "set aside unanswered",
                len(unreadable),
            )
        if crashing:
            log.error(
                "inbox: %d update(s) set aside after %d leaders started from them without finishing",
                len(crashing),
                MAX_REPLAYS,
            )
        if unreadable or crashing:
            await self.store.set_aside([*unreadable, *crashing])
        self.replayed += len(updates)
        return updates

    async def starting(self, update: object) -> None:
        """`update` is about to be handled: if it was replayed, count that one more leader started it
        (only leaders that start an update count towards MAX_REPLAYS, not those that stopped before it)."""
        if not self._replaying or not isinstance(update, Update):
            return
        if update.update_id not in self._replaying:
            return
        self._replaying.discard(update.update_id)
        try:
            await self.store.started(update.update_id)
        except Exception as exc:  # not counted: it is handled all the same (and saved, or waits again)
            if not database_unavailable(exc):
                raise
            log.warning("inbox: a replayed update's start not counted (%s)", type(exc).__name__)

    @contextlib.contextmanager
    def handling(self, update: object) -> Iterator[None]:
        """While `update` is handled, its use cases' units of work claim their steps in it."""
        if not isinstance(update, Update):
            yield
            return
        token = HANDLING.set(Handling(self.bot_id, update.update_id))
        try:
            yield
        finally:
            HANDLING.reset(token)
