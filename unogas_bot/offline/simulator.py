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
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Final

from telegram import Update
from telegram.ext import Application, BaseHandler, ConversationHandler, ExtBot

from unogas_bot.offline.events import Edited, Event, LiveMessage, Sent
from unogas_bot.offline.markup import JSONDict, keyboard_labels, utf16_len
from unogas_bot.offline.server import OfflineBotAPI

_COMMAND_ENTITY_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{1,64})?(?=\s|$)")
_OWN: Final = object()


def _text_content(text: str) -> JSONDict:
    """The ``text`` of a user's message, with the bot_command entity Telegram clients add to "/cmd ..."."""
    content: JSONDict = {"text": text}
    match = _COMMAND_ENTITY_RE.match(text)
    if match:
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
    return content


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


class SimUser:
    """One user in one chat. Each action returns the events it caused in this user's chats."""

    def __init__(
        self,
        sim: Simulator,
        user_id: int,
        first_name: str,
        last_name: str | None,
        language_code: str | None,
        username: str | None,
        chat_id: int,
        chat_type: str,
        title: str | None = None,
    ) -> None:
        self.sim = sim
        self.api = sim.api
        self.user_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.language_code = language_code
        self.username = username
        self.chat_id = chat_id
        self.chat_type = chat_type
        self.title = title or ("Gruppo di prova" if chat_type != "private" else None)
        self.last_events: list[Event] = []
        self.last_message_id: int | None = None  # id of the latest message this user sent
        self._callback_ids: set[str] = set()

    def __repr__(self) -> str:
        return f"SimUser(user_id={self.user_id}, chat_id={self.chat_id})"

    # ---- JSON builders -------------------------------------------------------------------------------

    @property
    def user_json(self) -> JSONDict:
        """The Telegram ``User`` object of this user."""
        data: JSONDict = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @property
    def chat_json(self) -> JSONDict:
        """The Telegram ``Chat`` object of this user's chat."""
        if self.chat_type == "private":
            fields = {"first_name": self.first_name, "last_name": self.last_name, "username": self.username}
        else:
            fields = {"title": self.title}
        return {
            "id": self.chat_id,
            "type": self.chat_type,
            **{k: v for k, v in fields.items() if v is not None},
        }

    def _new_message(self, text: str | None = None, **content: Any) -> JSONDict:
        if not self.api.knows_chat(self.chat_id):  # the chat becomes known when the user first writes
            fields = {k: v for k, v in self.chat_json.items() if k not in ("id", "type")}
            self.api.register_chat(self.chat_id, self.chat_type, **fields)
        message_id = self.last_message_id = self.api.new_message_id(self.chat_id)
        self.api.register_user_message(self.chat_id, message_id, text, self.user_json)
        message: JSONDict = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat_json,
            "from": self.user_json,
            **content,
        }
        if text is not None:
            message.update(_text_content(text))
        return message

    # ---- dispatch ------------------------------------------------------------------------------------

    async def _run(self, data: JSONDict) -> list[Event]:
        start = len(self.api.events)
        await self.sim.process(data)
        # Other users' updates may have run meanwhile: keep only what happened in this user's chats.
        self.last_events = self.api.events_since(start, {self.chat_id, self.user_id}, self._callback_ids)
        return self.last_events

    # ---- actions -------------------------------------------------------------------------------------

    async def send(self, text: str, *, reply_to: int | None = None) -> list[Event]:
        """Send a text message; "/cmd args" gets a bot_command entity as Telegram clients add it."""
        if not text:
            raise ValueError("Telegram does not deliver empty messages")
        content: JSONDict = {}
        if reply_to is not None:
            target = self.api.live_message(self.chat_id, reply_to)
            if target is None:
                raise LookupError(f"message {reply_to} is not in chat {self.chat_id}")
            content["reply_to_message"] = self.api.message_json(target)
        return await self._run({"message": self._new_message(text, **content)})

    async def press(self, label_or_data: str) -> list[Event]:
        """Press an inline button (matched by label, case-insensitively, or by exact callback_data).

        Looks at the bot's live messages in this chat, newest first, with their current keyboards.
        """
        wanted = label_or_data.casefold()
        available: list[str] = []
        for message in reversed(self.api.live_messages(self.chat_id)):
            if not message.from_bot or not message.inline_markup:
                continue
            for row in message.inline_markup["inline_keyboard"]:
                for button in row:
                    available.append(f"{button.get('text')!r} (message {message.message_id})")
                    if "callback_data" not in button:
                        continue
                    if str(button["text"]).casefold() == wanted or button["callback_data"] == label_or_data:
                        return await self.press_in(message.message_id, str(button["callback_data"]))
        shown = ", ".join(available) or "none"
        reply_kb = keyboard_labels(self.api.reply_keyboard(self.chat_id))
        hint = f"; reply keyboard (use send/share_contact): {reply_kb}" if reply_kb else ""
        raise LookupError(
            f"no inline button {label_or_data!r} in chat {self.chat_id}; buttons: {shown}{hint}"
        )

    async def press_in(self, message_id: int, callback_data: str) -> list[Event]:
        """Send a callback query for ``message_id`` with any data: stale or forged presses.

        A message that is not live (deleted, never existed) arrives as an inaccessible message (date 0),
        the way Telegram reports messages the bot can no longer see.
        """
        message = self.api.live_message(self.chat_id, message_id)
        if message is not None:
            message_json = self.api.message_json(message)
        else:
            message_json = {"message_id": message_id, "date": 0, "chat": self.chat_json}
        query_id = self.sim.next_callback_id()
        self._callback_ids.add(query_id)
        self.api.register_callback_query(query_id)
        query = {
            "id": query_id,
            "from": self.user_json,
            "message": message_json,
            "chat_instance": str(abs(self.chat_id) * 7919),
            "data": callback_data,
        }
        return await self._run({"callback_query": query})

    async def share_contact(self, phone_number: str, user_id: int | Any | None = _OWN) -> list[Event]:
        """Share a contact: by default one's own (as the "share phone" button does); pass another id (or
        None for a contact without a Telegram account) to share someone else's."""
        owner = self.user_id if user_id is _OWN else user_id
        contact: JSONDict = {"phone_number": phone_number, "first_name": self.first_name}
        if owner == self.user_id and self.last_name:
            contact["last_name"] = self.last_name
        if owner is not None:
            contact["user_id"] = owner
        if owner != self.user_id:
            contact["first_name"] = "Contatto"
        return await self._run({"message": self._new_message(contact=contact)})

    async def send_sticker(self, emoji: str = "👍") -> list[Event]:
        """Send a sticker."""
        sticker = {
            "file_id": f"STICKER-{self.user_id}",
            "file_unique_id": "sticker-unique",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._run({"message": self._new_message(sticker=sticker)})

    async def send_photo(self, caption: str | None = None) -> list[Event]:
        """Send a photo (two sizes, as Telegram delivers them)."""
        sizes = [
            {"file_id": f"PHOTO-S-{self.user_id}", "file_unique_id": "photo-s", "width": 90, "height": 90},
            {"file_id": f"PHOTO-L-{self.user_id}", "file_unique_id": "photo-l", "width": 800, "height": 800},
        ]
        content: JSONDict = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return await self._run({"message": self._new_message(**content)})

    async def send_document(
        self, file_name: str = "bolletta.pdf", mime_type: str = "application/pdf", caption: str | None = None
    ) -> list[Event]:
        """Send a file."""
        content: JSONDict = {
            "document": {
                "file_id": f"DOC-{self.user_id}",
                "file_unique_id": "doc-unique",
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": 12345,
            }
        }
        if caption:
            content["caption"] = caption
        return await self._run({"message": self._new_message(**content)})

    async def send_location(self, lat: float, lon: float) -> list[Event]:
        """Send a location."""
        return await self._run({"message": self._new_message(location={"latitude": lat, "longitude": lon})})

    async def edit(self, message_id: int, text: str) -> list[Event]:
        """Edit one of this user's text messages (an ``edited_message`` update)."""
        self.api.edit_user_message(self.chat_id, message_id, text)
        message: JSONDict = {
            "message_id": message_id,
            "date": int(time.time()) - 1,
            "edit_date": int(time.time()),
            "chat": self.chat_json,
            "from": self.user_json,
            **_text_content(text),
        }
        return await self._run({"edited_message": message})

    # ---- reading the chat ----------------------------------------------------------------------------

    @property
    def replies(self) -> list[Sent]:
        """Every message the bot sent to this user's chat, oldest first."""
        return self.api.messages_to(self.chat_id)

    @staticmethod
    def texts(events: Sequence[Event] | None = None) -> list[str]:
        """Texts (as shown to the user) of the Sent and Edited events in ``events``."""
        out: list[str] = []
        for event in events or []:
            if isinstance(event, Sent):
                out.append(event.plain_text)
            elif isinstance(event, Edited) and event.text is not None:
                out.append(event.plain_text or "")
        return out

    def last_texts(self) -> list[str]:
        """Texts caused by this user's latest action."""
        return self.texts(self.last_events)

    def last_reply_text(self) -> str | None:
        """The newest text the bot showed in this chat (sent or edited), markup removed."""
        event = self.api.last_text_event(self.chat_id)
        return None if event is None else event.plain_text

    def last_keyboard(self) -> JSONDict | None:
        """The keyboard the user is looking at: the inline keyboard of the newest live bot message that has
        one, else the reply keyboard currently shown in the chat."""
        for message in reversed(self.api.live_messages(self.chat_id)):
            if message.from_bot and message.inline_markup:
                return message.inline_markup
        return self.api.reply_keyboard(self.chat_id)

    def reply_keyboard(self) -> JSONDict | None:
        """The custom reply keyboard currently shown (None if none or removed)."""
        return self.api.reply_keyboard(self.chat_id)

    def buttons(self, event_or_last: Sent | Edited | LiveMessage | int | None = None) -> list[str]:
        """Button labels of an event / live message / message id, or of :meth:`last_keyboard` if None."""
        if event_or_last is None:
            return keyboard_labels(self.last_keyboard())
        if isinstance(event_or_last, int):
            message = self.api.live_message(self.chat_id, event_or_last)
            return keyboard_labels(message.reply_markup) if message else []
        return keyboard_labels(event_or_last.reply_markup)
