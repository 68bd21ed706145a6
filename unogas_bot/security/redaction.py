"""Logs never carry secrets or customers' data, whatever the log level; everything else stays readable.

python-telegram-bot logs at DEBUG every update it processes ("Processing update ..."), the raw body of every
webhook call and the parameters and results of every Bot API call, `getUpdates` included: with `--verbose`
a customer's password would be written to the log as they typed it. The filter installed here keeps those
records and their wording, and of their arguments removes only what can carry a secret or personal data:
updates, request parameters and other objects become their kind (`<Update 7>`, `<dict>`); a text the
message calls a token, secret, password, data, body or parameters becomes `<redacted>`, one that looks like
a JSON payload `<payload>`; in any other text the bot token, e-mail addresses, tax codes, phone and other
long numbers and bcrypt hashes are masked. So "Network Retry Loop (Polling Updates): Failed run number 0 of
0" and Telegram's error descriptions read as written. It also masks the bot token in URLs that HTTP
libraries log.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

# The bot token: in a Bot API URL, quoted by PTB when Telegram rejects it, or bare (a bot id, a colon and
# Telegram's 35 characters).
_TOKEN = re.compile(r"bot\d+:[A-Za-z0-9_-]+|(?<=token `)[^`]+(?=`)|\b\d{6,}:[A-Za-z0-9_-]{30,}")
_CF_DIGIT = "[0-9LMNP-V]"  # a digit of a codice fiscale, or the letter an omocodia puts in its place
_TAX_CODE = rf"\b[A-Z]{{6}}{_CF_DIGIT}{{2}}[A-Z]{_CF_DIGIT}{{2}}[A-Z]{_CF_DIGIT}{{3}}[A-Z]\b"
# Personal data a text argument may contain, each with what replaces it.
_PERSONAL = (
    (re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}"), "<hash>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<e-mail>"),
    (re.compile(_TAX_CODE, re.IGNORECASE), "<tax code>"),
    # Any other run of 9+ digits (spaces allowed): a phone number, a partita IVA, a user id.
    (re.compile(r"(?<![\w+])\+?\d(?: ?\d){8,}(?!\w)"), "<number>"),
)
# A format placeholder (%s, %(name)r, %5.2f, %%) and the words that, just before one, say its value is
# a secret or a payload ("secret token: %s", "Webhook received data: %s", "with parameters `%s`").
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([a-zA-Z%])")
_SECRET_WORDS = r"(?:secret|token|password|passwd|answer|data|body|payload|param(?:eter)?s?|text|content)"
_NAMES_A_SECRET = re.compile(_SECRET_WORDS + r"\W{0,3}$", re.IGNORECASE)
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
# Loggers whose records may quote updates or request parameters; and those that may log the token.
# aiosqlite's DEBUG records show each call's SQL parameters (e-mails, tax codes, hashes); SQLAlchemy's (with
# echo, or its loggers set to INFO) the parameters and the rows.
_PAYLOAD_LOGGERS = ("telegram", "aiosqlite", "sqlalchemy")
_URL_LOGGERS = ("httpx", "httpcore", "tornado.access", "tornado.general")


def mask_token(text: str) -> str:
    """`text` with the bot token replaced by `<token>`."""
    return _TOKEN.sub(lambda m: "bot<token>" if m.group().startswith("bot") else "<token>", text)


def is_telegram_error(arg: object) -> bool:
    """Is `arg` one of PTB's `telegram.error.TelegramError`s? Told by its class's ancestry, so this module
    (below the bot, like every security module) imports no Telegram."""
    return isinstance(arg, BaseException) and any(
        cls.__name__ == "TelegramError" and cls.__module__ == "telegram.error" for cls in type(arg).__mro__
    )


def describe(error: Any) -> str:
    """A Telegram (or network) error in one short line: its type and Telegram's description, which never
    quotes a customer's text; the token masked (PTB quotes it when Telegram rejects it)."""
    first = (error.message.splitlines() or [""])[0]
    name = type(error).__name__
    return mask_token(first if first.startswith(name) else f"{name}: {first}")[:300]


def redact_text(text: str) -> str:
    """`text` with the token and personal data masked (see the module's docstring)."""
    text = mask_token(text)
    for pattern, replacement in _PERSONAL:
        text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=512)
def _secret_slots(template: str) -> tuple[tuple[bool, ...], frozenset[str]]:
    """Which positional placeholders, and which named ones, the template's wording calls a secret."""
    positional: list[bool] = []
    named: set[str] = set()
    start = 0
    for placeholder in _PLACEHOLDER.finditer(template):
        key, kind = placeholder.group(1), placeholder.group(2)
        if kind == "%":
            continue
        secret = bool(_NAMES_A_SECRET.search(template[start : placeholder.start()]))
        start = placeholder.end()
        if key is None:
            positional.append(secret)
        elif secret or _SECRET_KEY.search(key):
            named.add(key)
    return tuple(positional), frozenset(named)


def _safe(arg: Any, secret: bool = False) -> Any:
    if arg is None or isinstance(arg, bool | int | float):
        return arg
    if isinstance(arg, str):
        if secret:
            return "<redacted>"
        if arg.lstrip().startswith(("{", "[")):
            return "<payload>"
        return redact_text(arg)
    if is_telegram_error(arg):  # Telegram's description of what went wrong, never user text
        return redact_text(describe(arg))
    if isinstance(arg, BaseException):  # other messages may quote what a customer typed
        return type(arg).__name__
    if isinstance(arg, tuple | list) and all(x is None or isinstance(x, int) for x in arg):
        return arg  # update ids, a conversation's (chat, user) key
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
        if is_telegram_error(error):
            # Telegram's answer or the network's, not a bug here: the traceback would only show PTB's
            # frames. One line instead (e.g. when PTB gives up a start-up call or a last getUpdates).
            record.msg = f"{record.msg} ({describe(error).replace('%', '%%')})"
            record.exc_info = None
            record.exc_text = None
        positional, named = _secret_slots(record.msg)
        if isinstance(record.args, Mapping) and not positional:  # "%(key)s" placeholders
            record.args = {key: _safe(value, key in named) for key, value in record.args.items()}
        elif isinstance(record.args, Mapping):  # one dict for one "%s": logging hands it over bare
            record.args = (_safe(record.args),)
        elif record.args:
            record.args = tuple(
                _safe(arg, i < len(positional) and positional[i]) for i, arg in enumerate(record.args)
            )
        else:  # a message made beforehand (an f-string): nothing marks what it quotes
            record.msg = redact_text(record.msg)
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
