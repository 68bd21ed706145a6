"""What the stand-in records: the bot's effects as events, its refused calls, and the messages in a chat.

Tests assert on these records instead of on PTB calls, so they are plain frozen values that compare by
content (``Sent(42, 2, "Ciao", None, "HTML")``) and show the text as the user would read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from unogas_bot.offline.markup import JSONDict, keyboard_labels, render_text


@dataclass(frozen=True, slots=True)
class Sent:
    """The bot sent a text message. ``text`` is exactly what the bot passed (markup included)."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: JSONDict | None
    parse_mode: str | None

    @property
    def plain_text(self) -> str:
        """The text as the user sees it: HTML markup removed, entities decoded."""
        return render_text(self.text, self.parse_mode)

    @property
    def buttons(self) -> list[str]:
        """Labels of the inline or reply keyboard attached to the message, row by row."""
        return keyboard_labels(self.reply_markup)


@dataclass(frozen=True, slots=True)
class DocumentSent:
    """The bot sent a file (sendDocument): its name and its bytes, exactly as uploaded."""

    chat_id: int
    message_id: int
    filename: str
    content: bytes = field(repr=False)
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class Edited:
    """The bot edited one of its messages. ``text`` is None for editMessageReplyMarkup.

    ``reply_markup`` is the markup after the edit; None means the inline keyboard was removed (Telegram
    removes it when an edit does not repeat it).
    """

    chat_id: int
    message_id: int
    text: str | None
    reply_markup: JSONDict | None
    parse_mode: str | None = field(default=None, compare=False)

    @property
    def plain_text(self) -> str | None:
        """The new text as the user sees it, or None for a markup-only edit."""
        return None if self.text is None else render_text(self.text, self.parse_mode)

    @property
    def buttons(self) -> list[str]:
        """Labels of the inline keyboard after the edit."""
        return keyboard_labels(self.reply_markup)


@dataclass(frozen=True, slots=True)
class Deleted:
    """The bot deleted a message (its own or the user's)."""

    chat_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class CallbackAnswered:
    """The bot answered a callback query (stopped the button's loading spinner)."""

    callback_query_id: str
    text: str | None
    show_alert: bool


@dataclass(frozen=True, slots=True)
class CommandsSet:
    """setMyCommands: ``commands`` is a list of ``{"command": ..., "description": ...}``."""

    commands: list[JSONDict]
    scope: JSONDict | None
    language_code: str | None


@dataclass(frozen=True, slots=True)
class Called:
    """Any other accepted method call (getMe, sendChatAction, setWebhook, ...), with decoded params."""

    method: str
    params: JSONDict


Event: TypeAlias = Sent | DocumentSent | Edited | Deleted | CallbackAnswered | CommandsSet | Called
CHAT_EVENTS: Final = (Sent, DocumentSent, Edited, Deleted)  # the events that happen in one chat


@dataclass(frozen=True, slots=True)
class ApiError:
    """A call that did not succeed (kept apart from ``events``, which are what the bot achieved).

    ``error_code`` is None for faults raised in the request layer (network, timeout).
    """

    method: str
    params: JSONDict
    error_code: int | None
    description: str


@dataclass(slots=True)
class LiveMessage:
    """A message currently visible in a chat, as the stand-in server knows it."""

    chat_id: int
    message_id: int
    from_bot: bool
    text: str | None
    reply_markup: JSONDict | None = None
    parse_mode: str | None = None
    date: int = field(default_factory=lambda: int(time.time()))  # stamped on arrival, as Telegram does
    edit_date: int | None = None
    from_user: JSONDict | None = None
    # What Telegram stores after parsing the markup; used for "not modified" checks and API results.
    # Left out, it is ``text``: a message without markup (a user's) reads as it was typed.
    plain_text: str | None = None
    entities: list[JSONDict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.plain_text is None:
            self.plain_text = self.text

    @property
    def inline_markup(self) -> JSONDict | None:
        """The markup Telegram attaches to the message: only inline keyboards stay on a message."""
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None
