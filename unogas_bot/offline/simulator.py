"""The user side of the stand-in: real update JSON from simulated users, fed to a real ``Application``.

Each user action (a message, a button press, a shared contact...) goes through the application's update
processor as polling would deliver it, and returns the events it caused in that user's chats, so a test
reads like a conversation::

    api = OfflineBotAPI()
    app = offline_builder(api).build()
    # ... add handlers ...
    async with Simulator(app, api) as sim:
        mario = sim.user(42)
        events = await mario.send("/start")
        await mario.press("Registrati")
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from telegram import Update
from telegram.ext import Application, BaseHandler, ConversationHandler, ExtBot

from unogas_bot.offline.markup import JSONDict
from unogas_bot.offline.server import OfflineBotAPI
from unogas_bot.offline.sim_user import SimUser


def _is_non_blocking(handler: BaseHandler[Any, Any, Any]) -> bool:
    if handler.block is False:
        return True
    if isinstance(handler, ConversationHandler):
        # A ConversationHandler always reports block=True; its own setting is only in `_block`.
        if getattr(handler, "_block", None) is False:
            return True
        nested = [*handler.entry_points, *handler.fallbacks, *itertools.chain(*handler.states.values())]
        return any(_is_non_blocking(h) for h in nested)
    return False


class Simulator:
    """Drives an Application built with :func:`offline_builder` from the user side.

    ``async with Simulator(app, api) as sim`` runs initialize → post_init → start and, on exit (also on
    errors), stop → post_stop → shutdown → post_shutdown, the order ``run_polling`` uses.
    """

    def __init__(
        self, app: Application, api: OfflineBotAPI, *, run_hooks: bool = True, first_update_id: int = 1
    ) -> None:
        self.app = app
        self.api = api
        self.run_hooks = run_hooks
        # Telegram numbers a bot's updates on: a simulator standing in for a restarted bot starts after
        # the ids its predecessor saw.
        self._update_ids = itertools.count(first_update_id)
        self._callback_ids = itertools.count(1)
        self._started = False
        self._handlers_key: tuple[Any, ...] | None = None  # see _may_run_non_blocking
        self._handlers_non_blocking = False
        # Called with each update (and its JSON) before it is processed, as polling writes it to the bot's
        # update inbox first (bot/inbox.py); False: delivered before, not processed again.
        self.admit: Callable[[Update, JSONDict], Awaitable[bool]] | None = None

    async def __aenter__(self) -> Simulator:
        await self.app.initialize()
        try:
            if self.run_hooks and self.app.post_init:
                await self.app.post_init(self.app)
            await self.app.start()
        except BaseException:
            await self.app.shutdown()
            raise
        self._started = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.app.running:
                await self.app.stop()
                if self.run_hooks and self.app.post_stop:
                    await self.app.post_stop(self.app)
        finally:
            await self.app.shutdown()
            self._started = False
            if self.run_hooks and self.app.post_shutdown:
                await self.app.post_shutdown(self.app)

    def user(
        self,
        user_id: int,
        first_name: str = "Mario",
        last_name: str | None = None,
        language_code: str | None = "it",
        username: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        title: str | None = None,
    ) -> SimUser:
        """A Telegram user; in a private chat (default) chat_id == user_id, a group needs a negative id."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        chat_id = user_id if chat_id is None else chat_id
        if chat_type == "private" and chat_id != user_id:
            raise ValueError("a private chat's id is the user's id")
        if chat_type != "private" and chat_id >= 0:
            raise ValueError("group chats have negative ids")
        return SimUser(
            self, user_id, first_name, last_name, language_code, username, chat_id, chat_type, title
        )

    async def process(self, data: JSONDict) -> None:
        """Feed one raw update (JSON dict) to the application, as polling would.

        Goes through the application's update processor, so ``concurrent_updates`` limits apply exactly
        as in production (with the default of 1, concurrent users are processed one at a time).
        """
        if not self._started:
            raise RuntimeError("use `async with Simulator(app, api)` before sending updates")
        data.setdefault("update_id", next(self._update_ids))
        update = Update.de_json(data, self.app.bot)
        if isinstance(self.app.bot, ExtBot):
            self.app.bot.insert_callback_data(update)  # what polling/webhooks do for arbitrary callback data
        if self.admit is not None and not await self.admit(update, data):
            return
        if not self._may_run_non_blocking():
            await self.app.update_processor.process_update(update, self.app.process_update(update))
            return
        before = asyncio.all_tasks()
        await self.app.update_processor.process_update(update, self.app.process_update(update))
        await self._wait_non_blocking(before, update.update_id)

    def _may_run_non_blocking(self) -> bool:
        # Scanning asyncio.all_tasks() costs O(tasks) per update; only pay for it when some handler can
        # run as a task. Checked per update because handlers may be added while the simulator runs.
        bot = self.app.bot
        if isinstance(bot, ExtBot) and bot.defaults is not None and not bot.defaults.block:
            return True
        if any(block is False for block in self.app.error_handlers.values()):
            return True
        # The nested scan is the costly part: redo it only when the registered handlers change (the key holds
        # the handler objects themselves, so a replaced handler never matches by a recycled id).
        key = tuple((group, tuple(handlers)) for group, handlers in self.app.handlers.items())
        if key != self._handlers_key:
            self._handlers_key = key
            self._handlers_non_blocking = any(_is_non_blocking(h) for _, group in key for h in group)
        return self._handlers_non_blocking

    async def _wait_non_blocking(self, before: set[asyncio.Task[Any]], update_id: int) -> None:
        # Handlers with block=False (and their error handlers) run as tasks; wait for the ones started
        # during this update so their API calls count as effects of the user's action.
        prefixes = (
            f"Application:{self.app.bot.id}:process_update_non_blocking",
            f"Application:{self.app.bot.id}:process_error:non_blocking",
            f"ConversationHandler:{update_id}:handle_update:non_blocking_cb",
        )
        waited: set[asyncio.Task[Any]] = set()
        current = asyncio.current_task()
        while True:
            pending = {
                t
                for t in asyncio.all_tasks() - before - waited
                if t is not current and not t.done() and t.get_name().startswith(prefixes)
            }
            if not pending:
                return
            waited |= pending
            await asyncio.gather(*pending, return_exceptions=True)

    def next_callback_id(self) -> str:
        """A fresh callback query id (Telegram uses long numeric strings)."""
        return str(7_000_000_000_000_000 + next(self._callback_ids))
