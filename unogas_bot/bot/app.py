"""Wiring: build the PTB Application with our services, conversations and the handlers around them."""

from __future__ import annotations

import contextlib
import functools
import logging
import traceback

from sqlalchemy.exc import TimeoutError as PoolTimeout
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import Conflict, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BasePersistence,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from conversations import own_data, privacy, secret_guard
from conversations.account import logout, show_profile
from conversations.context import BotContext
from conversations.engine import FormEngine, read_draft
from conversations.login import LoginForm
from conversations.recovery import RecoveryForm
from conversations.registration import RegistrationForm
from storage.db import database_unavailable
from storage.inbox import Superseded
from storage.persistence import SqlPersistence
from unogas_bot.bot import housekeeping, metrics
from unogas_bot.bot.application import UnogasApplication
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.update_processor import PerChatUpdateProcessor
from unogas_bot.i18n import texts
from unogas_bot.security import redaction
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

FORMS = (RegistrationForm(), LoginForm(), RecoveryForm(), *own_data.FORMS)

# Telegram did not answer in time, the connection broke, or flood control outlasted the retries: transient.
TELEGRAM_TRANSIENT = (NetworkError, RetryAfter)

# Flood control: how often a request refused with RetryAfter is tried again (after the wait Telegram asks).
RATE_LIMIT_RETRIES = 3


def make_rate_limiter() -> AIORateLimiter:
    """The rate limiter of `unogas-bot run`: Telegram's limits (30 messages/s overall, 20/min per group),
    and a request refused with RetryAfter waits as asked and is retried."""
    return AIORateLimiter(max_retries=RATE_LIMIT_RETRIES)


def build_application(
    services: Services,
    *,
    builder: ApplicationBuilder | None = None,
    persistence: BasePersistence | None = None,
    rate_limiter: BaseRateLimiter | None = None,
    requests: tuple[BaseRequest, BaseRequest] | None = None,
    inbox: Inbox | None = None,
) -> Application:
    """The bot: our Application subclass with every handler registered.

    `builder` lets the offline stand-in (tests, console, benchmark) supply its own request objects;
    otherwise the token and API URL come from the settings. With a `persistence` (storage/persistence.py)
    conversations survive restarts; `rate_limiter` is `make_rate_limiter()` when running on Telegram.
    `requests` (without a `builder`) are the HTTP backends for Bot API calls and for getUpdates. With an
    `inbox` (bot/inbox.py; it needs the persistence) every update is saved with its "handled" mark before
    its chat's next one starts (bot/application.py).
    """
    if inbox is not None and not isinstance(persistence, SqlPersistence):
        raise ValueError("the update inbox needs the SQL persistence")
    settings = services.settings
    # Before anything is built: PTB logs the Bot API URL, token included, while building the bot, and its
    # DEBUG records quote updates (passwords included). Again after building, for loggers made meanwhile.
    redaction.install()
    if builder is None:
        builder = Application.builder().token(settings.telegram_token or "")
        if settings.telegram_api_base_url:
            builder = builder.base_url(settings.telegram_api_base_url)
        if requests is not None:
            builder = builder.request(requests[0]).get_updates_request(requests[1])
    builder = builder.application_class(UnogasApplication, kwargs={"services": services})
    builder = builder.context_types(ContextTypes(context=BotContext))
    processor = PerChatUpdateProcessor(
        max_waiting=settings.chat_queue_limit,
        notice_interval=settings.slow_down_interval,
        clock=services.clock,
    )
    builder = builder.concurrent_updates(processor)
    if persistence is not None:
        builder = builder.persistence(persistence)
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()
    processor.on_overflow = functools.partial(slow_down, app)
    if inbox is not None and isinstance(app, UnogasApplication) and isinstance(persistence, SqlPersistence):
        app.inbox = inbox
        persistence.inbox = inbox.store
        processor.ledger = app
    redaction.install()
    add_handlers(app, persistent=persistence is not None)
    housekeeping.schedule(app)
    return app


def add_handlers(app: Application, persistent: bool = False) -> None:
    group_chats = ~filters.ChatType.PRIVATE
    private = filters.ChatType.PRIVATE
    # First of all: a message that may hold a secret is deleted, whatever handles it next.
    app.add_handler(secret_guard.handler(), group=-3)
    # Language works anywhere, even in the middle of a form: these stop the update before the forms see it.
    app.add_handler(CommandHandler(["lingua", "language"], choose_language, filters=private), group=-2)
    app.add_handler(CallbackQueryHandler(set_language, pattern=r"^lang\|"), group=-2)
    app.add_handler(CommandHandler("privacy", privacy.show_privacy, filters=private), group=-2)
    app.add_handler(MessageHandler(group_chats & ~filters.UpdateType.EDITED, redirect_group), group=-1)
    names = [form.name for form in FORMS]
    for form in FORMS:
        app.add_handler(form.handler(persistent=persistent, others=names))
    app.add_handler(CommandHandler(["profilo", "profile"], show_profile, filters=private))
    app.add_handler(CommandHandler(["esci", "logout"], logout, filters=private))
    app.add_handler(CommandHandler(["start", "aiuto", "help"], welcome, filters=private))
    app.add_handler(
        CommandHandler(["annulla", "cancel", "indietro", "back"], nothing_to_cancel, filters=private)
    )
    app.add_handler(CallbackQueryHandler(stale_button))
    app.add_handler(MessageHandler(private & filters.COMMAND, unknown_command))
    app.add_handler(MessageHandler(private & ~filters.UpdateType.EDITED, welcome))
    app.add_error_handler(on_error)


async def welcome(update: Update, context: BotContext) -> None:
    """/start, /aiuto and any message outside a form: what the customer can do in their state (the
    self-service commands once logged in, registration and login before)."""
    text = update.effective_message.text if update.effective_message else ""
    words = (text or "").split()  # a message of spaces only has no first word
    command = words[0].split("@")[0] if words else ""
    key = "help" if command in ("/aiuto", "/help") else "welcome"
    user = update.effective_user
    account = await context.services.accounts.session_account(user.id) if user is not None else None
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
