"""Offline stand-in for the Telegram Bot API, used by the tests, the terminal mode and the benchmark.

Three pieces:

* :class:`OfflineBotAPI` – an in-memory Telegram server. It answers the Bot API methods the bot uses with
  the same JSON envelopes, status codes and error descriptions as Telegram, keeps the messages of every
  chat, and records what the bot did as a list of events (:class:`Sent`, :class:`Edited`, ...).
* :class:`StandInRequest` – a ``telegram.request.BaseRequest`` that hands PTB's requests to that server
  instead of the network, so PTB's own error handling turns the answers into ``telegram.error`` exceptions.
* :class:`Simulator` / :class:`SimUser` – the user side: builds real update JSON, feeds it to an
  ``Application`` and reports the events each user action caused.

Typical use::

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
import bisect
import itertools
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Final, TypeAlias

from telegram import Update
from telegram.error import NetworkError, TimedOut
from telegram.ext import Application, ApplicationBuilder, BaseHandler, ConversationHandler, ExtBot
from telegram.request import BaseRequest, RequestData

__all__ = [
    "ApiError",
    "CallbackAnswered",
    "Called",
    "CommandsSet",
    "Deleted",
    "Edited",
    "Event",
    "Fault",
    "LiveMessage",
    "OfflineBotAPI",
    "Sent",
    "SimUser",
    "Simulator",
    "StandInRequest",
    "offline_builder",
    "render_text",
]

JSONDict: TypeAlias = dict[str, Any]

DEFAULT_TOKEN: Final = "123456:OFFLINE-TOKEN"

# --------------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------------


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
        """The text as the user sees it: HTML/Markdown markup removed, entities decoded."""
        return render_text(self.text, self.parse_mode)

    @property
    def buttons(self) -> list[str]:
        """Labels of the inline or reply keyboard attached to the message, row by row."""
        return keyboard_labels(self.reply_markup)


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


Event: TypeAlias = Sent | Edited | Deleted | CallbackAnswered | CommandsSet | Called
_CHAT_EVENTS: Final = (Sent, Edited, Deleted)  # the events that happen in one chat


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
    date: int = 0
    edit_date: int | None = None
    from_user: JSONDict | None = None
    # What Telegram stores after parsing the markup; used for "not modified" checks and API results.
    plain_text: str | None = None
    entities: list[JSONDict] = field(default_factory=list)

    @property
    def inline_markup(self) -> JSONDict | None:
        """The markup Telegram attaches to the message: only inline keyboards stay on a message."""
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            return self.reply_markup
        return None


class Fault(StrEnum):
    """Faults that :meth:`OfflineBotAPI.fail_next` can inject."""

    NETWORK = "network"  # request layer raises telegram.error.NetworkError (dropped connection)
    TIMEOUT = "timeout"  # request layer raises telegram.error.TimedOut
    RETRY_AFTER = "retry_after"  # 429 with parameters.retry_after -> telegram.error.RetryAfter
    BLOCKED = "blocked"  # 403 "Forbidden: bot was blocked by the user" -> telegram.error.Forbidden
    BAD_REQUEST = "bad_request"  # 400 -> telegram.error.BadRequest


# --------------------------------------------------------------------------------------------------------
# Text rendering: Telegram parses HTML / MarkdownV2 / Markdown server side and rejects malformed markup
# with "can't parse entities". Doing the same here catches unescaped user input in tests.
# --------------------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Malformed markup; the message is Telegram's text after "Bad Request: can't parse entities: "."""


def _utf16_len(text: str) -> int:
    # Telegram measures entity offsets and lengths in UTF-16 code units (one per character below U+10000).
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    # Telegram reports parse errors at UTF-8 byte offsets.
    return len(text[:index].encode("utf-8"))


class _TextBuilder:
    """Accumulates plain text while tracking the UTF-16 offset needed for entities."""

    __slots__ = ("offset", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.offset += _utf16_len(chunk)

    def text(self) -> str:
        return "".join(self.parts)


def _entity(kind: str, start: int, end: int, **extra: Any) -> JSONDict | None:
    if end <= start:  # Telegram silently drops empty entities
        return None
    return {"type": kind, "offset": start, "length": end - start, **extra}


def _sorted_entities(entities: Iterable[JSONDict | None]) -> list[JSONDict]:
    return sorted((e for e in entities if e), key=lambda e: (e["offset"], -e["length"]))


_HTML_TAGS: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAME_RE: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_HTML_ATTR_RE: Final = re.compile(r"\s*([a-zA-Z_-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_HTML_CHARREF_RE: Final = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_HTML_NAMED: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_SPECIAL_RE: Final = re.compile(r"[<&]")


@dataclass(slots=True)
class _OpenTag:
    name: str
    start: int
    attrs: dict[str, str]


def _html_attrs(raw: str, text: str, index: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    raw = raw.rstrip()
    while pos < len(raw):
        match = _HTML_ATTR_RE.match(raw, pos)
        if not match or match.end() == pos:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, index)}")
        value = next((g for g in match.groups()[1:] if g is not None), "")
        attrs[match.group(1).lower()] = _decode_html_charrefs(value)
        pos = match.end()
    return attrs


def _decode_html_charrefs(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref in _HTML_NAMED:
            return _HTML_NAMED[ref]
        code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])
        return chr(code) if 0 < code <= 0x10FFFF else match.group(0)

    return _HTML_CHARREF_RE.sub(replace, text)


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into (plain text, entities); raise EntityParseError like Telegram."""
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    entities: list[JSONDict | None] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "<":
            end = text.find(">", i)
            if end == -1:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
            inner = text[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
                top = stack[-1]
                if name != top.name:
                    raise EntityParseError(
                        f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                        f'expected "</{top.name}>", found "</{name}>"'
                    )
                stack.pop()
                entities.append(_close_html_tag(top, out.offset, stack))
            else:
                match = _HTML_NAME_RE.match(inner)
                name = match.group(0).lower() if match else ""
                if name not in _HTML_TAGS:
                    raise EntityParseError(
                        f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}'
                    )
                attrs = _html_attrs(inner[len(name) :], text, i)
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise EntityParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, i)}'
                    )
                if name == "tg-emoji" and not attrs.get("emoji-id"):
                    raise EntityParseError(
                        'Tag "tg-emoji" must have attribute "emoji-id" '
                        f"at byte offset {_byte_offset(text, i)}"
                    )
                stack.append(_OpenTag(name, out.offset, attrs))
            i = end + 1
        elif char == "&":
            match = _HTML_CHARREF_RE.match(text, i)
            if match:
                out.add(_decode_html_charrefs(match.group(0)))
                i = match.end()
            else:  # a bare "&" is kept literally
                out.add("&")
                i += 1
        else:
            # Plain text up to the next tag or character reference, found by the regex engine rather than
            # a Python loop over every character.
            special = _HTML_SPECIAL_RE.search(text, i)
            j = special.start() if special else n
            out.add(text[i:j])
            i = j
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text(), _sorted_entities(entities)


def _close_html_tag(tag: _OpenTag, end: int, stack: list[_OpenTag]) -> JSONDict | None:
    kind = _HTML_TAGS[tag.name]
    if kind == "code" and stack and stack[-1].name == "pre":
        # <pre><code class="language-x"> is a single pre entity with a language
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["language"] = language.removeprefix("language-")
        return None
    if kind == "text_link":
        href = tag.attrs.get("href")
        return _entity(kind, tag.start, end, url=href) if href else None
    if kind == "pre" and tag.attrs.get("language"):
        return _entity(kind, tag.start, end, language=tag.attrs["language"])
    if kind == "blockquote" and "expandable" in tag.attrs:
        return _entity("expandable_blockquote", tag.start, end)
    if kind == "custom_emoji":
        return _entity(kind, tag.start, end, custom_emoji_id=tag.attrs["emoji-id"])
    return _entity(kind, tag.start, end)


_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_TOGGLES: Final = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_MDV2_NAMES: Final = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _find_unescaped(text: str, target: str, start: int) -> int:
    """Index of ``target`` at or after ``start`` skipping backslash escapes; -1 if absent."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(target, i):
            return i
        i += 1
    return -1


def _unescape(text: str, allowed: str | None = None) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and (allowed is None or text[i + 1] in allowed):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    """Parse MarkdownV2 into (plain text, entities); unescaped reserved characters are errors."""
    out = _TextBuilder()
    stack: list[tuple[str, int, int]] = []  # (entity kind, utf-16 start, byte offset of the marker)
    entities: list[JSONDict | None] = []
    quote_start: int | None = None
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        if char == "\\" and i + 1 < n and 1 <= ord(text[i + 1]) <= 126:
            out.add(text[i + 1])
            i += 2
        elif char == "`":
            fence = "```" if text.startswith("```", i) else "`"
            close = _find_unescaped(text, fence, i + len(fence))
            if close == -1:
                kind = "Pre" if fence == "```" else "Code"
                raise EntityParseError(
                    f"Can't find end of {kind} entity at byte offset {_byte_offset(text, i)}"
                )
            body = text[i + len(fence) : close]
            extra: JSONDict = {}
            if fence == "```":
                first_line, newline, rest = body.partition("\n")
                if newline and first_line and not any(c.isspace() for c in first_line):
                    extra["language"], body = first_line, rest
                elif newline and not first_line:
                    body = rest
            start = out.offset
            out.add(_unescape(body, "`\\"))
            entities.append(_entity("pre" if fence == "```" else "code", start, out.offset, **extra))
            i = close + len(fence)
        elif char == ">" and at_line_start:
            if quote_start is None:
                quote_start = out.offset
            i += 1
        elif char == "\n":
            if quote_start is not None and not text.startswith(">", i + 1):
                entities.append(_entity("blockquote", quote_start, out.offset))
                quote_start = None
            out.add("\n")
            i += 1
        elif char in "*_~|":
            marker = text[i : i + 2] if text.startswith(("__", "||"), i) else char
            if marker == "|":
                raise EntityParseError(
                    "Character '|' is reserved and must be escaped with the preceding '\\'"
                )
            kind = _MDV2_TOGGLES[marker]
            open_index = next((k for k in range(len(stack) - 1, -1, -1) if stack[k][0] == kind), None)
            if open_index is None:
                stack.append((kind, out.offset, _byte_offset(text, i)))
            else:
                entities.append(_entity(kind, stack.pop(open_index)[1], out.offset))
            i += len(marker)
        elif char == "[" or (char == "!" and text.startswith("![", i)):
            kind = "custom_emoji" if char == "!" else "text_link"
            stack.append((kind, out.offset, _byte_offset(text, i)))
            i += 2 if char == "!" else 1
        elif char == "]":
            open_index = next(
                (k for k in range(len(stack) - 1, -1, -1) if stack[k][0] in ("text_link", "custom_emoji")),
                None,
            )
            if open_index is None:
                raise EntityParseError(
                    "Character ']' is reserved and must be escaped with the preceding '\\'"
                )
            kind, start, _ = stack.pop(open_index)
            if not text.startswith("(", i + 1):
                i += 1  # "[text]" without a URL is plain text
                continue
            close = _find_unescaped(text, ")", i + 2)
            if close == -1:
                raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(text, i + 1)}")
            url = _unescape(text[i + 2 : close], ")\\")
            if kind == "custom_emoji":
                emoji_id = url.removeprefix("tg://emoji?id=")
                entities.append(_entity(kind, start, out.offset, custom_emoji_id=emoji_id))
            else:
                entities.append(_entity(kind, start, out.offset, url=url))
            i = close + 1
        elif char in _MDV2_RESERVED:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            out.add(char)
            i += 1
    if quote_start is not None:
        entities.append(_entity("blockquote", quote_start, out.offset))
    if stack:
        kind, _, byte_offset = stack[-1]
        raise EntityParseError(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_offset}")
    return out.text(), _sorted_entities(entities)


def parse_markdown(text: str) -> tuple[str, list[JSONDict]]:
    """Parse legacy Markdown (no nesting; only _ * ` [ can be escaped) into (plain text, entities)."""
    out = _TextBuilder()
    entities: list[JSONDict | None] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
        elif char in "*_`":
            fence = "```" if text.startswith("```", i) else char
            close = text.find(fence, i + len(fence))
            if close == -1:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            body = text[i + len(fence) : close]
            kind = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}[fence]
            start = out.offset
            out.add(body)
            entities.append(_entity(kind, start, out.offset))
            i = close + len(fence)
        elif char == "[":
            close = text.find("]", i + 1)
            if close == -1 or not text.startswith("(", close + 1) or text.find(")", close + 2) == -1:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            url_end = text.find(")", close + 2)
            start = out.offset
            out.add(text[i + 1 : close])
            entities.append(_entity("text_link", start, out.offset, url=text[close + 2 : url_end]))
            i = url_end + 1
        else:
            out.add(char)
            i += 1
    return out.text(), _sorted_entities(entities)


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[JSONDict]]:
    """Parse ``text`` according to Telegram's ``parse_mode`` (None = plain text)."""
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise EntityParseError(f"Unsupported parse_mode {parse_mode}")


def render_text(text: str, parse_mode: str | None) -> str:
    """What the user sees for ``text`` sent with ``parse_mode``; the raw text if the markup is broken."""
    try:
        return parse_text(text, parse_mode)[0]
    except EntityParseError:
        return text


def keyboard_labels(reply_markup: JSONDict | None) -> list[str]:
    """Button labels of an inline or reply keyboard, row by row; [] for no keyboard."""
    if not reply_markup:
        return []
    rows = reply_markup.get("inline_keyboard") or reply_markup.get("keyboard") or []
    labels: list[str] = []
    for row in rows:
        for button in row:
            labels.append(button if isinstance(button, str) else str(button.get("text", "")))
    return labels


# --------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------


class _Failure(Exception):
    """Internal: aborts a method with a Telegram error answer."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass(slots=True)
class _PendingFault:
    method: str | None  # lower-cased method name, None = any
    fault: Fault
    remaining: int
    retry_after: int


# Parameters Telegram declares as String: they must not be JSON-decoded (the text "123" stays a string).
_STRING_PARAMS: Final = frozenset(
    {
        "text",
        "parse_mode",
        "callback_query_id",
        "url",
        "language_code",
        "action",
        "caption",
        "inline_message_id",
        "description",
        "short_description",
        "name",
        "secret_token",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
        "emoji",
        "certificate",
    }
)
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS: Final = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "web_app",
    "copy_text",
)
_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_RE: Final = re.compile(r"[a-z]{2}")
_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_QUERY_INVALID: Final = "Bad Request: query is too old and response timeout expired or query ID is invalid"
MAX_MESSAGE_LENGTH: Final = 4096
MAX_CALLBACK_ANSWER_LENGTH: Final = 200


def decode_request_params(request_data: RequestData | None) -> JSONDict:
    """Decode PTB's wire format the way the Bot API server does.

    PTB sends ``RequestData.json_parameters``: strings as they are, everything else (ints, bools, dicts,
    lists such as ``reply_markup``) JSON-encoded. String-typed parameters are kept verbatim.
    """
    if request_data is None:
        return {}
    params: JSONDict = {}
    for name, raw in request_data.json_parameters.items():
        if name in _STRING_PARAMS:
            params[name] = raw
            continue
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw  # e.g. chat_id="@channelname"
    return params


class OfflineBotAPI:
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
        self._faults: list[_PendingFault] = []
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
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(
            _PendingFault(method.lower() if method else None, Fault(fault), times, retry_after)
        )

    def clear_faults(self) -> None:
        """Forget faults that have not fired yet."""
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many injected failures have not fired yet."""
        return sum(f.remaining for f in self._faults)

    def _take_fault(self, method: str) -> _PendingFault | None:
        for pending in self._faults:
            if pending.method is None or pending.method == method:
                pending.remaining -= 1
                if pending.remaining == 0:
                    self._faults.remove(pending)
                return pending
        return None

    # ---- entry point ---------------------------------------------------------------------------------

    def call(self, method: str, params: JSONDict | None = None) -> tuple[int, JSONDict]:
        """Execute one Bot API method; return (HTTP status, Telegram's JSON answer).

        Injected "network"/"timeout" faults raise NetworkError/TimedOut instead, as the HTTP layer would.
        """
        params = dict(params or {})
        key = method.lower()
        fault = self._take_fault(key)
        try:
            if fault is not None:
                self._raise_fault(fault)
            handler = self._handlers.get(key)
            if handler is None:
                raise _Failure(404, "Not Found")
            result = handler(params)
        except _Failure as failure:
            self.errors.append(ApiError(method, params, failure.code, failure.description))
            answer: JSONDict = {"ok": False, "error_code": failure.code, "description": failure.description}
            if failure.parameters:
                answer["parameters"] = failure.parameters
            return failure.code, answer
        except NetworkError as exc:
            self.errors.append(ApiError(method, params, None, exc.message))
            raise
        return 200, {"ok": True, "result": result}

    def _raise_fault(self, pending: _PendingFault) -> None:
        match pending.fault:
            case Fault.NETWORK:
                raise NetworkError("httpx.ReadError: injected fault: connection reset by peer")
            case Fault.TIMEOUT:
                raise TimedOut("injected fault: read timed out")
            case Fault.RETRY_AFTER:
                raise _Failure(
                    429,
                    f"Too Many Requests: retry after {pending.retry_after}",
                    {"retry_after": pending.retry_after},
                )
            case Fault.BLOCKED:
                raise _Failure(403, "Forbidden: bot was blocked by the user")
            case Fault.BAD_REQUEST:
                raise _Failure(400, "Bad Request: injected fault")

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
            date=int(time.time()),
            from_user=from_user,
            plain_text=text,
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
            raise _Failure(400, "Bad Request: chat_id is empty")
        if isinstance(chat_id, str) or chat_id not in self._chats:
            if self.strict_chats or not isinstance(chat_id, int):
                raise _Failure(400, "Bad Request: chat not found")
            return self.register_chat(chat_id, "private" if chat_id > 0 else "group")
        return self._chats[chat_id]

    def _check_not_blocked(self, chat: JSONDict) -> None:
        if chat["id"] in self.blocked_chats:
            if chat["type"] == "private":
                raise _Failure(403, "Forbidden: bot was blocked by the user")
            raise _Failure(403, "Forbidden: bot was kicked from the group chat")

    def _parse(self, params: JSONDict) -> tuple[str, list[JSONDict]]:
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise _Failure(400, "Bad Request: message text is empty")
        try:
            plain, entities = parse_text(text, params.get("parse_mode"))
        except EntityParseError as exc:
            raise _Failure(400, f"Bad Request: can't parse entities: {exc}") from None
        if isinstance(params.get("entities"), list) and not params.get("parse_mode"):
            entities = params["entities"]  # explicit entities instead of markup
        if not plain.strip():
            raise _Failure(400, "Bad Request: message text is empty")
        if len(plain) > MAX_MESSAGE_LENGTH:
            raise _Failure(400, "Bad Request: message is too long")
        return plain, entities

    @staticmethod
    def _check_markup(markup: Any, *, inline_only: bool = False) -> JSONDict | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _Failure(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            for row in markup["inline_keyboard"]:
                for button in row:
                    actions = [a for a in _BUTTON_ACTIONS if a in button]
                    if not actions:
                        raise _Failure(
                            400,
                            "Bad Request: can't parse inline keyboard button: "
                            "Text buttons are unallowed in the inline keyboard",
                        )
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                        raise _Failure(400, "Bad Request: BUTTON_DATA_INVALID")
                    url = button.get("url")
                    if url is not None and not re.match(r"(https?|tg)://\S+$", str(url)):
                        raise _Failure(400, "Bad Request: BUTTON_URL_INVALID")
            return markup
        if inline_only:
            raise _Failure(400, "Bad Request: inline keyboard expected")
        if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
            raise _Failure(400, "Bad Request: can't parse reply keyboard markup JSON object")
        return markup

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
            raise _Failure(400, "Bad Request: MESSAGE_ID_INVALID")  # inline messages are not simulated
        chat = self._chat(params)
        message = self._get(chat["id"], params.get("message_id"))
        if message is None:
            raise _Failure(400, "Bad Request: message to edit not found")
        if not message.from_bot:
            raise _Failure(400, "Bad Request: message can't be edited")
        self._check_not_blocked(chat)
        return message

    def _delete(self, chat: JSONDict, message_id: Any) -> bool:
        message = self._get(chat["id"], message_id)
        if message is None:
            return False
        if not message.from_bot and chat["type"] != "private" and chat["id"] not in self.admin_chats:
            raise _Failure(400, "Bad Request: message can't be deleted")
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
        if isinstance(event, _CHAT_EVENTS):
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

    # ---- methods -------------------------------------------------------------------------------------

    def _m_getMe(self, params: JSONDict) -> JSONDict:
        self._record(Called("getMe", params))
        return self.bot_user

    def _m_sendMessage(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        plain, entities = self._parse(params)  # validates text first
        text, parse_mode = params["text"], params.get("parse_mode")
        markup = self._check_markup(params.get("reply_markup"))
        reply_to: LiveMessage | None = None
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            reply_to = self._get(reply.get("chat_id", chat["id"]), reply.get("message_id"))
            if reply_to is None and not reply.get("allow_sending_without_reply"):
                raise _Failure(400, "Bad Request: message to be replied not found")
        self._check_not_blocked(chat)

        message = LiveMessage(
            chat_id=chat["id"],
            message_id=self.new_message_id(chat["id"]),
            from_bot=True,
            text=text,
            reply_markup=markup,
            parse_mode=parse_mode,
            date=int(time.time()),
            plain_text=plain,
            entities=entities,
        )
        self._messages.setdefault(chat["id"], {})[message.message_id] = message
        if markup and "keyboard" in markup:
            self._reply_keyboards[chat["id"]] = markup
        elif markup and "remove_keyboard" in markup:
            self._reply_keyboards[chat["id"]] = None
        self._record(Sent(chat["id"], message.message_id, text, markup, parse_mode))
        return self.message_json(message, with_reply=reply_to)

    def _m_editMessageText(self, params: JSONDict) -> JSONDict:
        message = self._bot_message(params)
        plain, entities = self._parse(params)  # validates text first
        text, parse_mode = params["text"], params.get("parse_mode")
        # Telegram drops the inline keyboard unless the edit repeats it.
        markup = self._check_markup(params.get("reply_markup"), inline_only=True)
        if (plain, entities, markup) == (message.plain_text, message.entities, message.inline_markup):
            raise _Failure(400, _NOT_MODIFIED)
        message.text, message.parse_mode, message.plain_text, message.entities = (
            text,
            parse_mode,
            plain,
            entities,
        )
        message.reply_markup = markup
        message.edit_date = int(time.time())
        self._record(Edited(message.chat_id, message.message_id, text, markup, parse_mode))
        return self.message_json(message)

    def _m_editMessageReplyMarkup(self, params: JSONDict) -> JSONDict:
        message = self._bot_message(params)
        markup = self._check_markup(params.get("reply_markup"), inline_only=True)
        if markup == message.inline_markup:
            raise _Failure(400, _NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(time.time())
        self._record(Edited(message.chat_id, message.message_id, None, markup))
        return self.message_json(message)

    def _m_deleteMessage(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        if not self._delete(chat, params.get("message_id")):
            raise _Failure(400, "Bad Request: message to delete not found")
        return True

    def _m_deleteMessages(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _Failure(400, "Bad Request: message identifiers are not specified")
        for message_id in ids:  # Telegram skips the ones it cannot find
            self._delete(chat, message_id)
        return True

    def _m_answerCallbackQuery(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if self._callback_queries.get(query_id, True):
            raise _Failure(400, _QUERY_INVALID)  # unknown, or already answered
        text = params.get("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _Failure(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callback_queries[query_id] = True
        self._record(CallbackAnswered(query_id, text or None, bool(params.get("show_alert", False))))
        return True

    def _m_setMyCommands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _Failure(400, "Bad Request: commands are invalid")
        for command in commands:
            if not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
                raise _Failure(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _Failure(400, "Bad Request: command description is empty")
        language = params.get("language_code")
        if language and not _LANGUAGE_RE.fullmatch(language):
            raise _Failure(400, "Bad Request: invalid language code specified")
        scope = params.get("scope")
        self._commands[self._commands_key(scope, language)] = commands
        self._record(CommandsSet(commands, scope, language))
        return True

    def _m_deleteMyCommands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        self._record(Called("deleteMyCommands", params))
        return True

    def _m_getMyCommands(self, params: JSONDict) -> list[JSONDict]:
        self._record(Called("getMyCommands", params))
        return self.commands(params.get("scope"), params.get("language_code"))

    def _m_setChatMenuButton(self, params: JSONDict) -> bool:
        self._record(Called("setChatMenuButton", params))
        return True

    def _m_sendChatAction(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _Failure(400, "Bad Request: wrong parameter action in request")
        self._check_not_blocked(chat)
        self._record(Called("sendChatAction", params))
        return True

    def _m_getUpdates(self, params: JSONDict) -> list[JSONDict]:
        return []  # updates are fed straight to Application.process_update by the Simulator

    def _m_setWebhook(self, params: JSONDict) -> bool:
        self.webhook_url = str(params.get("url", ""))
        self._record(Called("setWebhook", params))
        return True

    def _m_deleteWebhook(self, params: JSONDict) -> bool:
        self.webhook_url = ""
        self._record(Called("deleteWebhook", params))
        return True

    def _m_getWebhookInfo(self, params: JSONDict) -> JSONDict:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": 0}

    def _m_close(self, params: JSONDict) -> bool:
        self._record(Called("close", params))
        return True

    def _m_logOut(self, params: JSONDict) -> bool:
        self._record(Called("logOut", params))
        return True


# --------------------------------------------------------------------------------------------------------
# PTB request layer
# --------------------------------------------------------------------------------------------------------


class StandInRequest(BaseRequest):
    """PTB request backend that answers from an :class:`OfflineBotAPI` instead of the network.

    Returns ``(status, json bytes)`` so PTB's ``BaseRequest._request_wrapper`` maps statuses to exceptions
    exactly as with Telegram: 400 BadRequest, 403 Forbidden, 404/401 InvalidToken, 429 RetryAfter
    (from ``parameters.retry_after``). After :meth:`shutdown` calls fail like a closed HTTPXRequest
    (RuntimeError, which PTB wraps in NetworkError).
    """

    __slots__ = ("_closed", "_read_timeout", "api")

    def __init__(self, api: OfflineBotAPI, read_timeout: float | None = 5.0) -> None:
        self.api = api
        self._read_timeout = read_timeout
        self._closed = False

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        self._closed = False

    async def shutdown(self) -> None:
        self._closed = True

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._closed:
            raise RuntimeError("This StandInRequest is not initialized!")
        api_method = url.rstrip("/").rsplit("/", 1)[-1]
        params = decode_request_params(request_data)
        await asyncio.sleep(self.api.latency)
        if api_method.lower() == "getupdates" and params.get("timeout"):
            # A long poll that returns nothing: wait a little so a polling Updater does not spin.
            await asyncio.sleep(min(float(params["timeout"]), 0.05))
        status, answer = self.api.call(api_method, params)
        return status, json.dumps(answer).encode("utf-8")


def offline_builder(
    api: OfflineBotAPI, token: str = DEFAULT_TOKEN, *, with_updater: bool = False
) -> ApplicationBuilder:
    """An ApplicationBuilder wired to ``api``; add persistence etc., then ``.build()``.

    Without an updater by default (the :class:`Simulator` feeds updates); ``with_updater=True`` keeps PTB's
    Updater, e.g. to run its real webhook server on loopback against the stand-in.
    """
    builder = (
        Application.builder()
        .token(token)
        .request(StandInRequest(api))
        .get_updates_request(StandInRequest(api))
    )
    return builder if with_updater else builder.updater(None)


# --------------------------------------------------------------------------------------------------------
# User side
# --------------------------------------------------------------------------------------------------------

_COMMAND_ENTITY_RE: Final = re.compile(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{1,64})?(?=\s|$)")
_OWN: Final = object()


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

    def __init__(self, app: Application, api: OfflineBotAPI, *, run_hooks: bool = True) -> None:
        self.app = app
        self.api = api
        self.run_hooks = run_hooks
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._started = False
        self._handlers_key: tuple[Any, ...] | None = None  # see _may_run_non_blocking
        self._handlers_non_blocking = False

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
            message["text"] = text
            match = _COMMAND_ENTITY_RE.match(text)
            if match:
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(match.group(0))}
                ]
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
            "text": text,
        }
        match = _COMMAND_ENTITY_RE.match(text)
        if match:
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(match.group(0))}]
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
