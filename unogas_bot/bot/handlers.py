"""The bot's handlers around the forms: the welcome and help, the language, stale buttons, unknown
commands, group chats, and the error handler (one clear line for a transient fault, never a traceback
to the customer). Registered by bot/wiring.py."""

from __future__ import annotations

import contextlib
import logging
import traceback

from sqlalchemy.exc import TimeoutError as PoolTimeout
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import Conflict, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
)

from conversations.context import BotContext
from conversations.engine import FormEngine
from conversations.forms import FORMS
from conversations.turn import read_draft
from storage.db import database_unavailable
from storage.inbox import Superseded
from unogas_bot.bot import metrics
from unogas_bot.i18n import texts
from unogas_bot.security import redaction
from unogas_bot.service import session

log = logging.getLogger(__name__)

# Telegram did not answer in time, the connection broke, or flood control outlasted the retries: transient.
TELEGRAM_TRANSIENT = (NetworkError, RetryAfter)


async def welcome(update: Update, context: BotContext) -> None:
    """/start, /aiuto and any message outside a form: what the customer can do in their state (the
    self-service commands once logged in, registration and login before)."""
    text = update.effective_message.text if update.effective_message else ""
    words = (text or "").split()  # a message of spaces only has no first word
    command = words[0].split("@")[0] if words else ""
    key = "help" if command in ("/aiuto", "/help") else "welcome"
    user = update.effective_user
    account = await session.current_account(context.services, user.id) if user is not None else None
    if account is None:
        await context.say(update, key)
    else:
        await context.say(update, f"{key}_session", email=account.email)


async def set_language_and_repeat(update: Update, context: BotContext) -> None:
    """After /lingua in the middle of a form: the open question again, in the language just chosen (its
    old buttons go stale: the question's serial moves on)."""
    for form in FORMS:
        if read_draft(context.user_data.get(form.name)) is not None:
            await FormEngine(form).repeat(update, context)
            return


async def slow_down(app: Application, update: object) -> None:
    """Told to a private chat whose updates were dropped because it sent too many at once
    (bot/update_processor.py), in the user's language; not in groups, where the bot collects nothing."""
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.effective_chat.type != ChatType.PRIVATE:
        return
    user = update.effective_user
    chosen = app.user_data.get(user.id, {}).get("lang") if user is not None else None
    lang = chosen or texts.language_for(user.language_code if user is not None else None)
    await app.bot.send_message(
        update.effective_chat.id, texts.t(lang, "slow_down"), parse_mode=ParseMode.HTML
    )


async def nothing_to_cancel(update: Update, context: BotContext) -> None:
    await context.say(update, "nothing_to_cancel")


async def unknown_command(update: Update, context: BotContext) -> None:
    await context.say(update, "unknown_command")


async def choose_language(update: Update, context: BotContext) -> None:
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Italiano", callback_data="lang|it"),
                InlineKeyboardButton("English", callback_data="lang|en"),
            ]
        ]
    )
    await context.bot.send_message(
        update.effective_chat.id, texts.t(context.language_of(update), "language_choose"), reply_markup=markup
    )
    raise ApplicationHandlerStop


async def set_language(update: Update, context: BotContext) -> None:
    query = update.callback_query
    choice = (query.data or "").partition("|")[2]
    if choice not in texts.LANGUAGES:
        await query.answer(texts.t(context.language_of(update), "stale_button"))
        raise ApplicationHandlerStop
    context.user_data["lang"] = choice
    await query.answer()
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)
    await context.say(update, "language_set")
    await set_language_and_repeat(update, context)
    raise ApplicationHandlerStop


async def stale_button(update: Update, context: BotContext) -> None:
    await update.callback_query.answer(texts.t(context.language_of(update), "stale_button"))


async def redirect_group(update: Update, context: BotContext) -> None:
    """In a group nothing is collected: one answer with a button to the private chat, once per group."""
    if context.chat_data is not None and context.chat_data.get("redirected"):
        return
    if context.chat_data is not None:
        context.chat_data["redirected"] = True
    lang = context.language_of(update)
    url = f"https://t.me/{context.bot.username}?start=registrati"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton(texts.t(lang, "btn_open_private"), url=url)]])
    await context.bot.send_message(
        update.effective_chat.id, texts.t(lang, "group_redirect"), reply_markup=markup
    )


def _failure_reason(error: BaseException | None) -> str:
    """The metrics' reason for an error that reached the handler (a fixed set: never the error's text)."""
    if isinstance(error, Conflict):
        return "telegram_conflict"
    if isinstance(error, Forbidden):
        return "telegram_blocked"
    if isinstance(error, TELEGRAM_TRANSIENT):
        return "telegram_unavailable"
    if error is not None and database_unavailable(error):
        if isinstance(error, PoolTimeout):  # no statement ran: the engine's error event did not see it
            metrics.DATABASE_ERRORS.labels("pool_timeout").inc()
        return "database_unavailable"
    return "internal_error"


async def on_error(update: object, context: BotContext) -> None:
    """The one place errors end up: log what happened (never a user's text) and tell the customer."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    if isinstance(error, Superseded):  # a newer leader exists: this process stops (bot/runner.py)
        on_superseded = getattr(context.application, "on_superseded", None)
        if on_superseded is not None:
            on_superseded(f"a newer leader took over ({error})")
        return
    metrics.FAILURES.labels(_failure_reason(error)).inc()
    if isinstance(error, Conflict):  # from polling: PTB goes on trying, with a growing wait
        log.error(
            "another instance of the bot is polling Telegram with this token (%s): only one may run",
            redaction.describe(error),
        )
        return
    if isinstance(error, Forbidden):
        log.info("update %s: the user blocked the bot", update_id)
        return
    if isinstance(error, TELEGRAM_TRANSIENT):
        # Nothing to fix in the code: the step was not kept, the customer repeats the reply (told below).
        log.warning("update %s: Telegram request failed with %s", update_id, type(error).__name__)
    else:
        # Exception messages can quote user input or SQL parameters: log the type and the frames only.
        frames = "".join(traceback.format_tb(error.__traceback__)) if error else ""
        log.error("update %s failed with %s\n%s", update_id, type(error).__name__, frames)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    # The database not answering: the customer is asked to retry shortly; anything else is our bug.
    unavailable = error is not None and database_unavailable(error)
    key = "db_unavailable" if unavailable else "error_generic"
    try:
        await context.say(update, key)
    except TelegramError as exc:
        log.warning("update %s: could not tell the user about the error (%s)", update_id, type(exc).__name__)
