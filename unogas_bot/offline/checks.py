"""Telegram's checks on the parameters of the methods the bot calls, with Telegram's error answers.

The conversation tests trust the stand-in to refuse what Telegram refuses (a malformed text, a keyboard
button without an action, a too long callback answer), so these rules are written out once here and
pinned by ``tests/unit/test_standin_rules.py``; the server only applies them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from unogas_bot.offline.faults import Failure
from unogas_bot.offline.markup import EntityParseError, JSONDict, UnsupportedParseMode, parse_text

MAX_MESSAGE_LENGTH: Final = 4096
MAX_CALLBACK_ANSWER_LENGTH: Final = 200
NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_INVALID: Final = "Bad Request: query is too old and response timeout expired or query ID is invalid"

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
_BUTTON_URL_RE: Final = re.compile(r"(https?|tg)://\S+$")
_COMMAND_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_RE: Final = re.compile(r"[a-z]{2}")


def check_text(params: JSONDict) -> tuple[str, list[JSONDict]]:
    """The plain text and entities Telegram would store for a sendMessage/editMessageText call.

    A Markdown or MarkdownV2 parse mode is refused like an unknown one: the stand-in parses HTML only.
    """
    text = params.get("text")
    if not isinstance(text, str) or not text:
        raise Failure(400, "Bad Request: message text is empty")
    try:
        plain, entities = parse_text(text, params.get("parse_mode"))
    except UnsupportedParseMode as exc:
        raise Failure(400, f"Bad Request: {exc}") from None
    except EntityParseError as exc:
        raise Failure(400, f"Bad Request: can't parse entities: {exc}") from None
    if isinstance(params.get("entities"), list) and not params.get("parse_mode"):
        entities = params["entities"]  # explicit entities instead of markup
    if not plain.strip():
        raise Failure(400, "Bad Request: message text is empty")
    if len(plain) > MAX_MESSAGE_LENGTH:
        raise Failure(400, "Bad Request: message is too long")
    return plain, entities


def _check_inline_button(button: JSONDict) -> None:
    if not any(action in button for action in _BUTTON_ACTIONS):
        raise Failure(
            400,
            "Bad Request: can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        )
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
        raise Failure(400, "Bad Request: BUTTON_DATA_INVALID")
    url = button.get("url")
    if url is not None and not _BUTTON_URL_RE.match(str(url)):
        raise Failure(400, "Bad Request: BUTTON_URL_INVALID")


def check_markup(markup: Any, *, inline_only: bool = False) -> JSONDict | None:
    """``reply_markup`` as given once checked; ``inline_only`` for edits, which keep only inline keyboards."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise Failure(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        for row in markup["inline_keyboard"]:
            for button in row:
                _check_inline_button(button)
        return markup
    if inline_only:
        raise Failure(400, "Bad Request: inline keyboard expected")
    if not {"keyboard", "remove_keyboard", "force_reply"} & markup.keys():
        raise Failure(400, "Bad Request: can't parse reply keyboard markup JSON object")
    return markup


def check_callback_answer(text: str | None) -> None:
    """The text of answerCallbackQuery: Telegram shows at most 200 characters."""
    if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
        raise Failure(400, "Bad Request: MESSAGE_TOO_LONG")


def check_commands(commands: Any, language_code: str | None) -> list[JSONDict]:
    """setMyCommands' list: at most 100 commands of lower-case names and non-empty descriptions."""
    if not isinstance(commands, list) or len(commands) > 100:
        raise Failure(400, "Bad Request: commands are invalid")
    for command in commands:
        if not _COMMAND_RE.fullmatch(str(command.get("command", ""))):
            raise Failure(400, "Bad Request: BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise Failure(400, "Bad Request: command description is empty")
    if language_code and not _LANGUAGE_RE.fullmatch(language_code):
        raise Failure(400, "Bad Request: invalid language code specified")
    return commands


def check_chat_action(action: Any) -> None:
    """sendChatAction's ``action``: one of Telegram's fixed names."""
    if action not in _CHAT_ACTIONS:
        raise Failure(400, "Bad Request: wrong parameter action in request")
