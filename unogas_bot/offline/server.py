"""The offline Telegram server: the Bot API methods the bot calls, and the chats and messages they act on.

It answers with Telegram's JSON envelopes, status codes and error descriptions, keeps every chat's live
messages, and records what the bot achieved as events (:mod:`unogas_bot.offline.events`); the methods
themselves are :mod:`unogas_bot.offline.methods`. Parameter checks live in
:mod:`unogas_bot.offline.checks`, injected faults in :mod:`unogas_bot.offline.faults`; PTB reaches the
server through :mod:`unogas_bot.offline.request` and users through :mod:`unogas_bot.offline.simulator`.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Iterable
from typing import Any

from telegram.error import NetworkError

from unogas_bot.offline.events import (
    CHAT_EVENTS,
    ApiError,
    CallbackAnswered,
    Deleted,
    Edited,
    Event,
    LiveMessage,
    Sent,
)
from unogas_bot.offline.faults import Failure, Fault, FaultQueue
from unogas_bot.offline.markup import JSONDict
from unogas_bot.offline.methods import BotApiMethods


class OfflineBotAPI(BotApiMethods):
    """In-memory Telegram Bot API server.

    Everything is synchronous and runs on the event loop thread, so each call is atomic even when many
    updates are processed concurrently.

    Args:
        bot_id / bot_username / bot_first_name: what getMe answers.
        latency: seconds StandInRequest waits before each call. Even 0 yields to the event loop once, so
            concurrent handlers interleave at every API call as they would over the network.
        strict_chats: if True (Telegram's behaviour) sending to a chat the server has never seen (no
            :meth:`register_chat`, no user message) answers 400 "Bad Request: chat not found".
    """

    def __init__(
        self,
        *,
        bot_id: int = 1000001,
        bot_username: str = "UnogasBot",
        bot_first_name: str = "Unogas",
        latency: float = 0.0,
        strict_chats: bool = True,
    ) -> None:
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.latency = latency
        self.strict_chats = strict_chats
        self.events: list[Event] = []
        self.errors: list[ApiError] = []
        self.blocked_chats: set[int] = set()
        # Groups where the bot is an administrator and may delete other people's messages.
        self.admin_chats: set[int] = set()
        self.webhook_url = ""
        self._chats: dict[int, JSONDict] = {}
        self._counters: dict[int, int] = {}
        # chat id -> message id -> message; ids only grow, so each dict is in message order
        self._messages: dict[int, dict[int, LiveMessage]] = {}
        self._sent: dict[int, list[Sent]] = {}  # chat id -> Sent events, for O(1) per-chat queries
        self._last_text: dict[int, Sent | Edited] = {}  # chat id -> newest Sent/Edited that set a text
        # Positions in `events`, for attributing events to chats without scanning the whole list.
        self._chat_positions: dict[int, list[int]] = {}  # chat id -> positions of Sent/Edited/Deleted
        self._answer_positions: dict[str, int] = {}  # callback query id -> position of its answer
        self._deleted: set[tuple[int, int]] = set()
        self._reply_keyboards: dict[int, JSONDict | None] = {}
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._faults = FaultQueue()
        # Bot API method names are case-insensitive; every `_m_<method>` below is one supported method.
        self._handlers = {
            name[3:].lower(): getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # ---- fault injection -----------------------------------------------------------------------------

    def fail_next(
        self, method: str | None, fault: Fault | str, times: int = 1, *, retry_after: int = 1
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method if None) fail with ``fault``.

        Faults queue in order; a failed call is not executed (no message is delivered).
        """
        self._faults.add(method, fault, times, retry_after)

    def clear_faults(self) -> None:
        """Forget faults that have not fired yet."""
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many injected failures have not fired yet."""
        return self._faults.pending

    # ---- entry point ---------------------------------------------------------------------------------

    def call(self, method: str, params: JSONDict | None = None) -> tuple[int, JSONDict]:
        """Execute one Bot API method; return (HTTP status, Telegram's JSON answer).

        Injected "network"/"timeout" faults raise NetworkError/TimedOut instead, as the HTTP layer would.
        """
        params = dict(params or {})
        key = method.lower()
        try:
            self._faults.fire(key)
            handler = self._handlers.get(key)
            if handler is None:
                raise Failure(404, "Not Found")
            result = handler(params)
        except Failure as failure:
            self.errors.append(ApiError(method, params, failure.code, failure.description))
            return failure.code, failure.answer()
        except NetworkError as exc:
            self.errors.append(ApiError(method, params, None, exc.message))
            raise
        return 200, {"ok": True, "result": result}

    # ---- state used by the simulator -----------------------------------------------------------------

    def register_chat(self, chat_id: int, chat_type: str = "private", **fields: Any) -> JSONDict:
        """Make a chat known to the server (as when a user first writes); ``fields`` go into the Chat JSON."""
        chat = {"id": chat_id, "type": chat_type, **{k: v for k, v in fields.items() if v is not None}}
        self._chats[chat_id] = chat
        return chat

    def knows_chat(self, chat_id: int) -> bool:
        """True once the chat was registered (a user wrote in it)."""
        return chat_id in self._chats

    def new_message_id(self, chat_id: int) -> int:
        """Next message id of ``chat_id``; bot and user messages share one increasing counter per chat."""
        self._counters[chat_id] = self._counters.get(chat_id, 0) + 1
        return self._counters[chat_id]

    def register_user_message(
        self, chat_id: int, message_id: int, text: str | None, from_user: JSONDict | None = None
    ) -> LiveMessage:
        """Remember a message the user sent (so the bot can delete it, reply to it, ...)."""
        if chat_id not in self._chats:
            self.register_chat(chat_id, "private" if chat_id > 0 else "group")
        message = LiveMessage(
            chat_id=chat_id,
            message_id=message_id,
            from_bot=False,
            text=text,
            from_user=from_user,
        )
        self._messages.setdefault(chat_id, {})[message_id] = message
        return message

    def register_callback_query(self, callback_query_id: str) -> None:
        """Declare a callback query id the user side issued, so answerCallbackQuery accepts it once."""
        self._callback_queries[callback_query_id] = False

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> LiveMessage:
        """Apply a user's edit of their own text message."""
        message = self._get(chat_id, message_id)
        if message is None or message.from_bot:
            raise LookupError(f"no live user message {message_id} in chat {chat_id}")
        message.text = message.plain_text = text
        message.edit_date = int(time.time())
        return message

    # ---- queries -------------------------------------------------------------------------------------

    def messages_to(self, chat_id: int) -> list[Sent]:
        """Every message the bot sent to ``chat_id``, in order (deleted ones included)."""
        return list(self._sent.get(chat_id, ()))

    def texts_to(self, chat_id: int) -> list[str]:
        """Texts (as the user sees them, markup removed) of the messages the bot sent to ``chat_id``."""
        return [e.plain_text for e in self.messages_to(chat_id)]

    def events_since(
        self, position: int, chat_ids: Iterable[int], callback_query_ids: Iterable[str] = ()
    ) -> list[Event]:
        """Events from ``events[position:]`` that concern ``chat_ids`` (Sent/Edited/Deleted there) or
        answer one of ``callback_query_ids``, in order. Cost depends on those chats only."""
        positions: list[int] = []
        for chat_id in set(chat_ids):
            chat_positions = self._chat_positions.get(chat_id, [])
            positions.extend(chat_positions[bisect.bisect_left(chat_positions, position) :])
        for query_id in callback_query_ids:
            answer = self._answer_positions.get(query_id)
            if answer is not None and answer >= position:
                positions.append(answer)
        return [self.events[p] for p in sorted(positions)]

    def live_message(self, chat_id: int, message_id: int) -> LiveMessage | None:
        """The current state of a message, or None if unknown or deleted."""
        return self._get(chat_id, message_id)

    def live_messages(self, chat_id: int) -> list[LiveMessage]:
        """All live messages of a chat, oldest first."""
        return list(self._messages.get(chat_id, {}).values())

    def last_text_event(self, chat_id: int) -> Sent | Edited | None:
        """The newest Sent or Edited event that put a text in ``chat_id``."""
        return self._last_text.get(chat_id)

    def is_deleted(self, chat_id: int, message_id: int) -> bool:
        """True if the message existed and was deleted."""
        return (chat_id, message_id) in self._deleted

    def reply_keyboard(self, chat_id: int) -> JSONDict | None:
        """The custom reply keyboard currently shown in ``chat_id`` (None if none or removed)."""
        return self._reply_keyboards.get(chat_id)

    def commands(self, scope: JSONDict | None = None, language_code: str | None = None) -> list[JSONDict]:
        """Commands currently set for ``scope`` / ``language_code`` (as getMyCommands would answer)."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def unanswered_callback_queries(self) -> list[str]:
        """Callback query ids the bot never answered (the user would see a spinner)."""
        return [qid for qid, answered in self._callback_queries.items() if not answered]

    # ---- helpers -------------------------------------------------------------------------------------

    def _chat(self, params: JSONDict) -> JSONDict:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise Failure(400, "Bad Request: chat_id is empty")
        if isinstance(chat_id, str) or chat_id not in self._chats:
            if self.strict_chats or not isinstance(chat_id, int):
                raise Failure(400, "Bad Request: chat not found")
            return self.register_chat(chat_id, "private" if chat_id > 0 else "group")
        return self._chats[chat_id]

    def _check_not_blocked(self, chat: JSONDict) -> None:
        if chat["id"] in self.blocked_chats:
            if chat["type"] == "private":
                raise Failure(403, "Forbidden: bot was blocked by the user")
            raise Failure(403, "Forbidden: bot was kicked from the group chat")

    def message_json(self, message: LiveMessage, *, with_reply: LiveMessage | None = None) -> JSONDict:
        """The Telegram ``Message`` JSON of a live message (current text and inline keyboard)."""
        data: JSONDict = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": self._chats.get(message.chat_id, {"id": message.chat_id, "type": "private"}),
        }
        sender = self.bot_user if message.from_bot else message.from_user
        if sender:
            data["from"] = sender
        if message.plain_text is not None:
            data["text"] = message.plain_text
        if message.entities:
            data["entities"] = message.entities
        if message.inline_markup:
            data["reply_markup"] = message.inline_markup
        if message.edit_date:
            data["edit_date"] = message.edit_date
        if with_reply is not None:
            data["reply_to_message"] = self.message_json(with_reply)
        return data

    def _bot_message(self, params: JSONDict) -> LiveMessage:
        if params.get("inline_message_id"):
            raise Failure(400, "Bad Request: MESSAGE_ID_INVALID")  # inline messages are not simulated
        chat = self._chat(params)
        message = self._get(chat["id"], params.get("message_id"))
        if message is None:
            raise Failure(400, "Bad Request: message to edit not found")
        if not message.from_bot:
            raise Failure(400, "Bad Request: message can't be edited")
        self._check_not_blocked(chat)
        return message

    def _delete(self, chat: JSONDict, message_id: Any) -> bool:
        message = self._get(chat["id"], message_id)
        if message is None:
            return False
        if not message.from_bot and chat["type"] != "private" and chat["id"] not in self.admin_chats:
            raise Failure(400, "Bad Request: message can't be deleted")
        del self._messages[chat["id"]][message.message_id]
        self._deleted.add((chat["id"], message.message_id))
        self._record(Deleted(chat["id"], message.message_id))
        return True

    def _get(self, chat_id: Any, message_id: Any) -> LiveMessage | None:
        # Parameters come from the wire, so they may be of any type.
        chat = self._messages.get(chat_id) if isinstance(chat_id, int) else None
        return chat.get(message_id) if chat is not None and isinstance(message_id, int) else None

    def _record(self, event: Event) -> None:
        position = len(self.events)
        self.events.append(event)
        if isinstance(event, CHAT_EVENTS):
            self._chat_positions.setdefault(event.chat_id, []).append(position)
        elif isinstance(event, CallbackAnswered):
            self._answer_positions[event.callback_query_id] = position
        if isinstance(event, Sent):
            self._sent.setdefault(event.chat_id, []).append(event)
        if isinstance(event, Sent | Edited) and event.text is not None:
            self._last_text[event.chat_id] = event

    @staticmethod
    def _commands_key(scope: JSONDict | None, language_code: str | None) -> tuple[str, str]:
        return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""
