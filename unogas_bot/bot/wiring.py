"""Wiring: build the PTB Application with our services, the forms and the handlers around them
(bot/handlers.py), in the order they see an update."""

from __future__ import annotations

import functools
import logging

from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BasePersistence,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from conversations import privacy, secret_guard
from conversations.account import logout, show_profile
from conversations.context import BotContext
from conversations.forms import FORMS
from conversations.handler import form_handler
from storage.persistence import SqlPersistence
from unogas_bot.bot import housekeeping
from unogas_bot.bot.application import UnogasApplication
from unogas_bot.bot.handlers import (
    choose_language,
    nothing_to_cancel,
    on_error,
    redirect_group,
    set_language,
    slow_down,
    stale_button,
    unknown_command,
    welcome,
)
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.update_processor import PerChatUpdateProcessor
from unogas_bot.security import redaction
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

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
        max_waiting=settings.limits.chat_queue_limit,
        notice_interval=settings.limits.slow_down_interval,
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
        app.add_handler(form_handler(form, persistent=persistent, others=names))
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
