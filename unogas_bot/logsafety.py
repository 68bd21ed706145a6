"""Logs never carry what customers type, whatever the log level.

python-telegram-bot logs at DEBUG every update it processes ("Processing update ..."), the raw body of every
webhook call and the parameters and results of every Bot API call, `getUpdates` included: with `--verbose`
a customer's password would be written to the log as they typed it. The filter installed here keeps those
records and their wording but replaces each argument that could hold message text by its kind (numbers,
API method names and Telegram's own error descriptions stay). It also masks the bot token in URLs that
HTTP libraries log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from telegram.error import TelegramError

# The bot token: in a Bot API URL, quoted by PTB when Telegram rejects it, or bare (a bot id, a colon and
# Telegram's 35 characters).
_TOKEN = re.compile(r"bot\d+:[A-Za-z0-9_-]+|(?<=token `)[^`]+(?=`)|\b\d{6,}:[A-Za-z0-9_-]{30,}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")  # e.g. an API method name: no spaces, no text
# Loggers whose records may quote updates or request parameters; and those that may log the token.
# aiosqlite's DEBUG records show each call's SQL parameters (e-mails, tax codes, hashes).
_PAYLOAD_LOGGERS = ("telegram", "aiosqlite")
_URL_LOGGERS = ("httpx", "httpcore", "tornado.access", "tornado.general")


def mask_token(text: str) -> str:
    """`text` with the bot token replaced by `<token>`."""
    return _TOKEN.sub(lambda m: "bot<token>" if m.group().startswith("bot") else "<token>", text)


def describe(error: TelegramError) -> str:
    """A Telegram (or network) error in one short line: its type and Telegram's description, which never
    quotes a customer's text; the token masked (PTB quotes it when Telegram rejects it)."""
    first = (error.message.splitlines() or [""])[0]
    name = type(error).__name__
    return mask_token(first if first.startswith(name) else f"{name}: {first}")[:300]


def _safe(arg: Any) -> Any:
    if arg is None or isinstance(arg, bool | int | float):
        return arg
    if isinstance(arg, str) and _NAME.fullmatch(arg):
        return arg
    if isinstance(arg, TelegramError):  # Telegram's description of what went wrong, never user text
        return mask_token(f"{type(arg).__name__}: {arg.message}")
    if isinstance(arg, BaseException):
        return type(arg).__name__
    update_id = getattr(arg, "update_id", None)
    if isinstance(update_id, int):
        return f"<{type(arg).__name__} {update_id}>"
    return f"<{type(arg).__name__}>"


class RedactPayloads(logging.Filter):
    """Replaces the arguments of python-telegram-bot's log records that could quote message text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            record.msg = f"<{type(record.msg).__name__}>"
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, TelegramError):
            # Telegram's answer or the network's, not a bug here: the traceback would only show PTB's
            # frames. One line instead (e.g. when PTB gives up a start-up call or a last getUpdates).
            record.msg = f"{record.msg} ({describe(error).replace('%', '%%')})"
            record.exc_info = None
            record.exc_text = None
        if isinstance(record.args, Mapping):
            record.args = {key: _safe(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_safe(arg) for arg in record.args)
        return True


class MaskToken(logging.Filter):
    """Masks the bot token in the URLs HTTP libraries log (it is part of every Bot API URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_token(str(record.msg))
        if isinstance(record.args, Mapping):
            record.args = {key: mask_token(str(value)) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(
                arg if isinstance(arg, int | float) else mask_token(str(arg)) for arg in record.args
            )
        return True


def install() -> None:
    """Attach the filters to every logger of those libraries that exists now (idempotent).

    A logger's filters only see records logged on that very logger, so each one gets its own; the
    libraries create their loggers when imported, which has happened once the Application is built.
    """
    for name in [*logging.root.manager.loggerDict, *_PAYLOAD_LOGGERS, *_URL_LOGGERS]:
        if _under(name, _PAYLOAD_LOGGERS):
            _attach(logging.getLogger(name), RedactPayloads)
        elif _under(name, _URL_LOGGERS):
            _attach(logging.getLogger(name), MaskToken)


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def _attach(logger: logging.Logger, kind: type[logging.Filter]) -> None:
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())
