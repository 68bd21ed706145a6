"""The bot's Application: PTB's, carrying our services, and saving each update's effects with its mark.

Without an update inbox (the console, most tests) PTB hands the changed conversation data to the
persistence every 0.1 s and it is written then (storage/persistence.py). With one (`run`), an update is
*handled* only once its effects are saved: when it has been processed, it is noted, and the next write
saves its changes (the conversation state, the user's and chat's data) and marks it handled in the inbox,
in one transaction with the leadership epoch's check. The update waits for that write before its chat's
next update starts (`settle`); updates finishing meanwhile share the next write (a group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from telegram import Update
from telegram.ext import Application

# What Application.update_persistence itself imports to read the conversations' states.
from telegram.ext._handlers.conversationhandler import PendingState
from telegram.ext._utils.trackingdict import TrackingDict

from storage.inbox import Superseded
from storage.persistence import SqlPersistence
from unogas_bot.bot import metrics
from unogas_bot.service.context import Services


class UnogasApplication(Application):
    """PTB's Application carrying our services (PTB's own class has __slots__ and takes no extras)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        # Set when this process lost the leadership (bot/leader.py): what it holds in memory must not be
        # written over what the new leader writes, so nothing more is written.
        self.fenced = False
        # The update inbox (bot/inbox.py), set by build_application when the bot has one.
        self.inbox: Any = None
        # Called with the reason when a write found a newer leader (`run`: the process stops at once).
        self.on_superseded: Callable[[str], None] | None = None
        self._handled: list[int] = []  # updates processed since the last write began
        self._saved: asyncio.Future[None] | None = None  # resolved when that write is done
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Future[None] | None = None  # writes the processed updates (settle)

    def handling(self, update: object) -> AbstractContextManager[None]:
        """The context `update` is processed in: with an inbox, its use cases claim their steps in it."""
        return self.inbox.handling(update) if self.inbox is not None else contextlib.nullcontext()

    async def starting(self, update: object) -> None:
        """`update`'s processing starts: a replayed one is counted as started (bot/inbox.py)."""
        if self.inbox is not None:
            await self.inbox.starting(update)

    def note_handled(self, update: object) -> asyncio.Future[None] | None:
        """`update` has been processed (or dropped): the next write marks it handled with its effects.
        Returns the future of that write (None without an inbox). Call it as soon as the processing
        returns, with no await in between: its effects and this note then go into the same write."""
        if self.inbox is None or not isinstance(update, Update):
            return None
        self._handled.append(update.update_id)
        if self._saved is None:
            self._saved = asyncio.get_running_loop().create_future()
        return self._saved

    async def settle(self, update: object) -> None:
        """Note `update` as processed and wait until its effects and mark are written (or, the database
        being unreachable, kept for the next write: its chat may go on meanwhile)."""
        saved = self.note_handled(update)
        if saved is None or self.fenced:
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_handled())
        await saved

    async def _write_handled(self) -> None:
        """Write until no processed update waits (those finishing during a write go in the next)."""
        while self._handled and not self.fenced:
            async with self._write_lock:
                await self._write()
        if self.fenced and self._saved is not None and not self._saved.done():
            self._saved.set_result(None)  # nothing more is written: nobody waits for it

    async def update_persistence(self) -> None:
        """PTB hands the changed data to the persistence, then it is flushed: storage/persistence.py notes
        changes in memory and writes them in one transaction when flushed. PTB calls this every
        `persistence.update_interval` seconds and when the application stops; `settle` after updates."""
        if self.fenced:
            return
        async with self._write_lock:
            await self._write()
        if not self.running and self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)  # stopping: nothing left behind

    def _note_changes(self, persistence: SqlPersistence) -> None:
        """What PTB's update_persistence hands over (the user and chat data marked since, the
        conversations' new states), noted in one synchronous step: no task per row and no copy of the
        data, which the persistence serialises at once (PTB copies it because a persistence may await
        before it reads it)."""
        drop_chats, self._chat_ids_to_be_deleted_in_persistence = (
            self._chat_ids_to_be_deleted_in_persistence,
            set(),
        )
        chats, self._chat_ids_to_be_updated_in_persistence = (
            self._chat_ids_to_be_updated_in_persistence,
            set(),
        )
        for chat_id in chats - drop_chats:
            persistence.note_chat(chat_id, self.chat_data[chat_id])
        for chat_id in drop_chats:
            persistence.note_chat(chat_id, None)
        drop_users, self._user_ids_to_be_deleted_in_persistence = (
            self._user_ids_to_be_deleted_in_persistence,
            set(),
        )
        users, self._user_ids_to_be_updated_in_persistence = (
            self._user_ids_to_be_updated_in_persistence,
            set(),
        )
        for user_id in users - drop_users:
            persistence.note_user(user_id, self.user_data[user_id])
        for user_id in drop_users:
            persistence.note_user(user_id, None)
        for name, states in self._conversation_handler_conversations.items():
            for key, state in states.pop_accessed_write_items():
                if isinstance(state, PendingState):  # a non-blocking handler (none of ours): as PTB does
                    if not state.done():
                        states.mark_as_accessed(key)
                        state = state.old_state
                    else:
                        state = state.resolve()
                persistence.note_conversation(name, key, None if state is TrackingDict.DELETED else state)

    async def _write(self) -> None:
        handled, saved = self._handled, self._saved
        self._handled, self._saved = [], None
        try:
            # The changed data is taken now, before any await: together with the notes taken just above,
            # so a noted update's effects are in this write, and no effect without its note.
            if isinstance(self.persistence, SqlPersistence):
                self._note_changes(self.persistence)
            else:
                await super().update_persistence()  # it, too, takes the data before its first await
            if self.persistence is None:
                return
            if handled:
                self.persistence.note_handled(handled)  # type: ignore[attr-defined]
            measured = bool(getattr(self.persistence, "pending", 0))  # a write, not an idle tick
            start = time.perf_counter()
            try:
                await self.persistence.flush()  # an unreachable database is logged there and retried later
            except Superseded as exc:
                self.fenced = True  # nothing more is written; `run` stops the process at once
                if self.on_superseded is not None:
                    self.on_superseded(f"a newer leader took over ({exc})")
            except Exception as exc:
                await self.process_error(update=None, error=exc)
            finally:
                if measured:
                    metrics.FLUSH_SECONDS.observe(time.perf_counter() - start)
        finally:
            if saved is not None and not saved.done():
                saved.set_result(None)
