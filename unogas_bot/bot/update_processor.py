"""Many chats at once, one update at a time within a chat, and no chat able to starve the others.

PTB processes one update at a time by default, so one customer's 0.2 s bcrypt hash would make every other
customer wait. Fully concurrent processing instead lets two quick messages of the same customer race
through a ConversationHandler. This processor takes the middle way: updates of different chats run
concurrently, updates of the same chat one at a time in arrival order.

Fairness. PTB's own ``BaseUpdateProcessor.process_update`` takes one of its global slots (a semaphore of
``max_concurrent_updates``) before anything else. Waiting for the chat's turn inside that slot would let a
single chat that sends hundreds of messages hold every slot while its updates queue behind each other, and
every other chat would wait for them all. Here an update first waits for its chat's turn, holding no slot,
and takes a global slot only when its turn has come: a chat never holds more than one slot, whatever it
sends.

Bounds. A chat's line holds at most ``max_waiting`` updates behind the one running; more are dropped (a
person typing does not get that far ahead of the bot; a script does), and the chat is told to slow down at
most once per ``notice_interval``. Memory does not grow with the chats seen: a chat is remembered while it
has an update running or waiting, and a notice time only for ``notice_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from unogas_bot.bot import metrics
from unogas_bot.clock import utcnow
from unogas_bot.security.json_logs import LOG_CONTEXT, LogContext

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 256
# Updates of one chat allowed to wait behind the one being processed; later ones are dropped.
DEFAULT_MAX_WAITING = 20
DEFAULT_NOTICE_INTERVAL = timedelta(minutes=1)

Notify = Callable[[object], Awaitable[None]]
# Asked before each update is handled: may this process handle updates now? (bot/leader.py: fencing)
Gate = Callable[[], Awaitable[bool]]
# What the log context of an update is (bot/runner.py knows the conversations): update -> (flow, step).
Describe = Callable[[object], tuple[str | None, str | None]]


class Ledger(Protocol):
    """Where handled updates are recorded (bot/application.py with the update inbox, bot/inbox.py)."""

    def handling(self, update: object) -> AbstractContextManager[None]:
        """The context an update is processed in (its use cases claim their steps in it)."""

    async def starting(self, update: object) -> None:
        """The update's processing starts now (a replayed update's start is counted)."""

    async def settle(self, update: object) -> None:
        """The update was processed: return once its effects and its "handled" mark are written."""

    def note_handled(self, update: object) -> object:
        """The update will not be processed (dropped): mark it handled with the next write."""


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Per-chat FIFO lines in front of PTB's global concurrency limit (see the module docstring).

    `on_overflow(update)` is awaited for a dropped update when the chat has not been told within
    `notice_interval` (the bot sends the "slow down" message; app.py sets it once the bot exists).
    `clock` decides that interval, so tests can move time instead of sleeping.
    """

    def __init__(
        self,
        max_concurrent_updates: int = DEFAULT_CONCURRENCY,
        *,
        max_waiting: int = DEFAULT_MAX_WAITING,
        notice_interval: timedelta = DEFAULT_NOTICE_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
        on_overflow: Notify | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        if max_waiting < 0:
            raise ValueError("max_waiting cannot be negative")
        self.max_waiting = max_waiting
        self.notice_interval = notice_interval
        self.on_overflow = on_overflow
        self._clock = clock
        # chat -> the turns of its waiting updates, oldest first. A chat is a key exactly while one of its
        # updates runs (or is about to): the first update of an idle chat creates the key and runs at once.
        self._lines: dict[int, deque[asyncio.Future[None]]] = {}
        # chat -> when it was last told to slow down; insertion order is time order (oldest first).
        self._noticed: dict[int, datetime] = {}
        self.dropped = 0  # updates dropped since start, for the benchmark and the logs
        # Set by `run`: the leadership's confirmation (an update is not handled without it) and the
        # conversation an update belongs to, for the JSON logs.
        self.gate: Gate | None = None
        self.describe: Describe | None = None
        # Set with an update inbox (app.py): each update is processed in its context and waits until it is
        # saved before its chat's next one starts.
        self.ledger: Ledger | None = None

    @staticmethod
    def _key(update: object) -> int | None:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return update.effective_user.id
        return None

    def busy_chats(self) -> int:
        """Chats with an update running or waiting (what this processor keeps in memory)."""
        return len(self._lines)

    def waiting(self, chat_id: int) -> int:
        """Updates of `chat_id` waiting for their turn (not counting the one running)."""
        line = self._lines.get(chat_id)
        return len(line) if line is not None else 0

    async def process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's turn holding no global slot, then process the update inside one.

        Replaces PTB's (marked final for type checkers only), which takes the slot first."""
        arrived = time.perf_counter()
        key = self._key(update)
        if key is None:
            async with self._semaphore:
                await self._handle(update, coroutine, arrived)
            return
        line = self._lines.get(key)
        if line is None:
            self._lines[key] = deque()  # the chat was idle: this update's turn is now
        elif len(line) >= self.max_waiting:
            await self._drop(key, update, coroutine)
            return
        else:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            line.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.cancelled():
                    with contextlib.suppress(ValueError):
                        line.remove(turn)  # left the line before its turn
                else:
                    self._hand_over(key)  # the turn came just as we were cancelled: pass it on
                _close(coroutine)
                raise
        try:
            async with self._semaphore:
                await self._handle(update, coroutine, arrived)
        finally:
            self._hand_over(key)

    async def _handle(self, update: object, coroutine: Awaitable[Any], arrived: float) -> None:
        """Handle the update if this process may (the gate), with its log context, and measure it."""
        if self.gate is not None and not await self.gate():
            # Fenced: another process may be answering this customer by now. Not handled, and not
            # confirmed to Telegram either once the process stops: the new leader gets it.
            _close(coroutine)
            return
        update_id = update.update_id if isinstance(update, Update) else None
        flow, step = self.describe(update) if self.describe is not None else (None, None)
        token = LOG_CONTEXT.set(LogContext(update_id, flow, step))
        ledger = self.ledger
        try:
            if ledger is None:
                await self.do_process_update(update, coroutine)
            else:
                await ledger.starting(update)
                with ledger.handling(update):
                    await self.do_process_update(update, coroutine)
        finally:
            LOG_CONTEXT.reset(token)
            metrics.count_update(update)
            metrics.REPLY_SECONDS.observe(time.perf_counter() - arrived)
        if ledger is not None:
            # No await since the processing returned: its effects and this note are written together.
            await ledger.settle(update)

    def _hand_over(self, key: int) -> None:
        """The chat's running update is done: start its next waiting one, or forget the chat."""
        line = self._lines[key]
        while line:
            turn = line.popleft()
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)
                return
        del self._lines[key]

    async def _drop(self, key: int, update: object, coroutine: Awaitable[Any]) -> None:
        """Drop an update of a chat whose line is full; tell the chat, at most once per interval."""
        _close(coroutine)
        self.dropped += 1
        metrics.UPDATES_DROPPED.inc()
        if self.ledger is not None:
            self.ledger.note_handled(update)  # answered by the notice (or not at all): never again
        now = self._clock()
        self._forget_old_notices(now)
        if key in self._noticed:
            return
        self._noticed[key] = now
        log.warning("chat %s sends faster than it is served: updates dropped", key)
        if self.on_overflow is None:
            return
        try:
            await self.on_overflow(update)
        except Exception as exc:  # a notice that fails must not become an error reply of its own
            log.warning("chat %s: could not send the slow-down notice (%s)", key, type(exc).__name__)

    def _forget_old_notices(self, now: datetime) -> None:
        while self._noticed:
            key, when = next(iter(self._noticed.items()))
            if now - when < self.notice_interval:
                return
            del self._noticed[key]

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """The update's turn has come and it holds a global slot: run it."""
        await coroutine

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def _close(coroutine: Awaitable[Any]) -> None:
    """Discard an update's processing coroutine that will never run (no "never awaited" warning)."""
    if inspect.iscoroutine(coroutine):
        coroutine.close()
