"""A simulated Telegram user in one chat (:class:`SimUser`): each action builds the update JSON a client
would send and returns the events it caused, through the :class:`Simulator` it belongs to."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from unogas_bot.offline.events import Edited, Event, LiveMessage, Sent
from unogas_bot.offline.markup import JSONDict, keyboard_labels, utf16_len

if TYPE_CHECKING:
    from unogas_bot.offline.simulator import Simulator

_COMMAND_ENTITY_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{1,64})?(?=\s|$)")
_OWN: Final = object()


def _text_content(text: str) -> JSONDict:
    """The ``text`` of a user's message, with the bot_command entity Telegram clients add to "/cmd ..."."""
    content: JSONDict = {"text": text}
    match = _COMMAND_ENTITY_RE.match(text)
    if match:
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
    return content


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
