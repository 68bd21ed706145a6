"""Running the bot for real on Telegram: long polling, or a webhook behind a TLS reverse proxy."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal

from sqlalchemy import text
from telegram import BotCommand, BotCommandScopeDefault, Update
from telegram.ext import Application, ConversationHandler
from tornado.httpserver import HTTPServer

from storage.db import Database
from storage.inbox import Fence, InboxStore
from storage.persistence import SqlPersistence
from unogas_bot.bot import health, metrics
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.leader import Leadership, leadership_for
from unogas_bot.bot.metrics import MeasuredHasher, ObservedRequest
from unogas_bot.bot.serving import (
    ALLOWED_UPDATES,
    STARTUP_TRIES,
    StartupError,
    Webhook,
    reach_telegram,
    serve_polling,
    serve_webhook,
    with_retries,
)
from unogas_bot.bot.update_processor import PerChatUpdateProcessor
from unogas_bot.bot.wiring import build_application, make_rate_limiter
from unogas_bot.config import Settings
from unogas_bot.events.link import EventsLink
from unogas_bot.i18n import texts
from unogas_bot.security import sealing
from unogas_bot.security.hashing import EphemeralMac
from unogas_bot.service.context import Services

# What `run` and its command line use; the serving pieces (bot/serving.py) are reached through here too.
__all__ = [
    "ALLOWED_UPDATES",
    "MENU",
    "STARTUP_TRIES",
    "StartupError",
    "Webhook",
    "freeze_startup_heap",
    "publish_commands",
    "run",
    "with_retries",
]

log = logging.getLogger(__name__)

# The commands Telegram lists in its menu, in each language (key: catalogue key of the description).
MENU = {
    "it": (
        ("registrati", "cmd_register"),
        ("accedi", "cmd_login"),
        ("recupera_password", "cmd_recover"),
        ("profilo", "cmd_profile"),
        ("esci", "cmd_logout"),
        ("annulla", "cmd_cancel"),
        ("aiuto", "cmd_help"),
        ("lingua", "cmd_language"),
        ("cambia_password", "cmd_change_password"),
        ("cambia_email", "cmd_change_email"),
        ("cambia_telefono", "cmd_change_phone"),
        ("cambia_domanda", "cmd_change_question"),
        ("i_miei_dati", "cmd_my_data"),
        ("cancella_profilo", "cmd_delete_profile"),
        ("privacy", "cmd_privacy"),
    ),
    "en": (
        ("register", "cmd_register"),
        ("login", "cmd_login"),
        ("recover", "cmd_recover"),
        ("profile", "cmd_profile"),
        ("logout", "cmd_logout"),
        ("cancel", "cmd_cancel"),
        ("help", "cmd_help"),
        ("language", "cmd_language"),
        ("change_password", "cmd_change_password"),
        ("change_email", "cmd_change_email"),
        ("change_phone", "cmd_change_phone"),
        ("change_question", "cmd_change_question"),
        ("my_data", "cmd_my_data"),
        ("delete_profile", "cmd_delete_profile"),
        ("privacy", "cmd_privacy"),
    ),
}


async def publish_commands(app: Application) -> None:
    """Register the command menu: Italian by default, English for English-speaking clients."""
    for lang, commands in MENU.items():
        menu = [BotCommand(name, texts.t(lang, key)) for name, key in commands]
        code = None if lang == texts.DEFAULT_LANGUAGE else lang
        await app.bot.set_my_commands(menu, scope=BotCommandScopeDefault(), language_code=code)


async def _serve_polling_until_signalled(app: Application) -> None:
    """serve_polling until Ctrl+C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve_polling(app, stop)


async def _serve_webhook_until_signalled(app: Application, hook: Webhook) -> None:
    """serve_webhook until Ctrl+C or SIGTERM, as PTB's run_webhook stops."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve_webhook(app, hook, stop)


def freeze_startup_heap() -> None:
    """Put everything alive after start-up (libraries, catalogue, handlers, loaded conversations) out of
    the cyclic garbage collector's sight. A full collection then walks only what the bot made since, instead
    of stopping the event loop for 100 ms and more (seen by `unogas-bot bench`). Frozen objects are still
    freed as usual when nothing refers to them any more."""
    gc.collect()
    gc.freeze()


def production_application(
    services: Services,
    requests: tuple[ObservedRequest, ObservedRequest] | None = None,
    inbox: Inbox | None = None,
) -> Application:
    """The bot as `run` serves it: conversations kept in the database, flood control with retries, and
    (with `inbox`) every update written down before Telegram is told and saved with its effects;
    `requests` (metrics.ObservedRequest) let /readyz and /metrics see the Bot API's answers."""
    return build_application(
        services,
        persistence=SqlPersistence(services.db),
        rate_limiter=make_rate_limiter(),
        requests=requests,
        inbox=inbox,
    )


def inbox_for(services: Services, bot_id: int) -> Inbox:
    """The update inbox of `run`, sealed with INBOX_KEY or the key derived from the token; the forms'
    digests of a secret's first entry get a key from the same secret, so every process of the bot can
    compare them (a takeover between a password and its repetition asks for nothing again)."""
    settings = services.settings
    secret = sealing.master_secret(settings.inbox_key, settings.telegram_token)
    services.mac = EphemeralMac.derived(sealing.digest_key(secret))
    return Inbox(InboxStore(services.db, bot_id, clock=services.clock), sealing.Sealer(secret))


def observed_requests() -> tuple[ObservedRequest, ObservedRequest]:
    """The HTTP backends PTB would build by default (a pool of 256 connections for calls, one for
    getUpdates), observed."""
    return ObservedRequest(connection_pool_size=256), ObservedRequest(connection_pool_size=1)


def bot_id_of(token: str) -> int:
    """The bot's id: a Telegram token starts with it ("123456:ABC..."). Known before any request, so a
    standby needs no answer from Telegram to know which leader it waits for."""
    head = token.partition(":")[0]
    return int(head) if head.isdigit() else int.from_bytes(token.encode()[:7], "big")


def describe_update(app: Application, update: object) -> tuple[str | None, str | None]:
    """The conversation `update` continues, for the log context: the form's name and the question's key
    (names from the code, never the customer's text), or (None, None) outside a conversation."""
    if not isinstance(update, Update) or update.effective_chat is None or update.effective_user is None:
        return None, None
    key = (update.effective_chat.id, update.effective_user.id)
    for group in app.handlers.values():
        for handler in group:
            if isinstance(handler, ConversationHandler):
                # PTB keeps the states here (housekeeping.py reads the same dict).
                state = handler._conversations.get(key)
                if state is not None:
                    return handler.name, str(state)
    return None, None


# Exit status of a leader that lost its database connection (fenced): the service manager restarts it.
FENCED_STATUS = 1


def fence(app: Application, reason: str) -> None:
    """Stop at once: this process can no longer prove it leads, and a standby may take over any moment.

    Nothing more is written (`UnogasApplication.fenced`) and no update more is handled or confirmed to
    Telegram (the process ends here, without PTB's orderly stop, whose last getUpdates would confirm
    updates this process will never handle): the new leader gets them, and the conversations as last
    written. One log line says why."""
    app.fenced = True  # type: ignore[attr-defined]
    log.error("fenced: %s; stopped handling updates and exiting, to be restarted as a standby", reason)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(FENCED_STATUS)


async def _acquire_unless_terminated(leadership: Leadership) -> bool:
    """Acquire the leadership; False if SIGTERM came first (a standby being stopped: nothing to save)."""
    loop = asyncio.get_running_loop()
    terminated = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, terminated.set)
    acquiring = asyncio.ensure_future(leadership.acquire())
    waiting = asyncio.ensure_future(terminated.wait())
    try:
        await asyncio.wait({acquiring, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        waiting.cancel()
        if not acquiring.done():
            acquiring.cancel()
        await asyncio.gather(acquiring, waiting, return_exceptions=True)
    if acquiring.cancelled():
        return False
    acquiring.result()  # LeadershipRefused (SQLite) ends `run` with its line
    return True


async def _database_answers(services: Services) -> bool:
    async with services.db.read() as conn:
        await conn.execute(text("SELECT 1"))
    return True


def run(settings: Settings, webhook: Webhook | None = None) -> int:
    """Bring the schema up to date, become the leader (waiting as a standby while another process leads),
    then serve Telegram (long polling, or `webhook`) until interrupted. With METRICS_PORT, /healthz,
    /readyz and /metrics are served from the start (bot/health.py)."""

    # Fenced: the running Application stops at once (set below, once it exists).
    apps: list[Application] = []
    leadership = leadership_for(
        settings.database_url,
        bot_id_of(settings.telegram_token or ""),
        lambda reason: fence(apps[0], reason),
    )
    if not leadership.waits:
        # SQLite: a second `run` on the file refuses at once, before it touches the database or Telegram.
        asyncio.run(leadership.acquire())

    async def prepare() -> Services:
        db = Database(settings.database_url)
        await db.upgrade()
        # The bot runs in another event loop (PTB's): keep no connection opened in this one.
        await db.dispose()
        hasher = MeasuredHasher(settings.bcrypt_rounds, settings.hash_workers)
        return Services.create(settings, db, hasher=hasher)

    try:
        services = asyncio.run(prepare())
    except BaseException:
        asyncio.run(leadership.release())
        raise
    metrics.watch_database(services.db)
    hasher = services.hasher if isinstance(services.hasher, MeasuredHasher) else None

    async def post_init(app: Application) -> None:
        await publish_commands(app)
        freeze_startup_heap()

    async def post_shutdown(app: Application) -> None:
        await services.close()

    requests = observed_requests()
    bot_id = bot_id_of(settings.telegram_token or "")
    app = production_application(services, requests, inbox_for(services, bot_id))
    apps.append(app)
    app.post_init = post_init
    app.post_shutdown = post_shutdown
    app.on_superseded = functools.partial(fence, app)  # type: ignore[attr-defined]
    processor = app.update_processor
    if isinstance(processor, PerChatUpdateProcessor):
        processor.gate = leadership.confirm
        processor.describe = functools.partial(describe_update, app)
    # A process that can no longer prove it leads sends nothing more (a frozen leader waking up).
    requests[0].gate = leadership.may_send
    probes = health.Probes(
        role=lambda: leadership.role,
        database=functools.partial(_database_answers, services),
        bot_api=functools.partial(metrics.bot_api_reachable, *requests),
    )
    # One event loop from the first contact with Telegram to the end: the bot's HTTP client lives in it.
    # (asyncio.Runner also cancels what is left and closes the loop, after Ctrl+C too.)
    with asyncio.Runner() as loop:
        server = None
        try:
            if settings.metrics_port is not None:
                server = loop.run(_start_health(probes, settings.metrics_host, settings.metrics_port))
            loop.run(reach_telegram(app))
            if leadership.waits and not loop.run(_acquire_unless_terminated(leadership)):
                loop.run(services.close())
                if server is not None:
                    loop.run(health.stop(server))
                log.info("unogas-bot stopped as a standby (SIGTERM)")
                return 0
        except BaseException:
            loop.run(leadership.release())
            loop.run(services.close())
            if server is not None:
                loop.run(health.stop(server))
            raise
        if leadership.epoch is not None:
            services.db.fence = Fence(bot_id, leadership.epoch)  # every write now checks it
        metrics.LEADER.set(1)
        unwatch = metrics.watch_application(app, hasher)
        # issue 24: the leader relays the outbox and consumes the CRM's customer events (with AMQP_URL).
        events = loop.run(_start_events(services))
        try:
            if webhook is None:
                log.info("unogas-bot is running on Telegram (long polling); Ctrl+C stops it")
                loop.run(_serve_polling_until_signalled(app))
            else:
                log.info(
                    "unogas-bot is running on Telegram (webhook %s, listening on %s:%d); Ctrl+C stops it",
                    webhook.url,
                    webhook.listen,
                    webhook.port,
                )
                loop.run(_serve_webhook_until_signalled(app, webhook))
        finally:
            if events is not None:
                loop.run(events.stop())
            # PTB has stopped the bot and written the conversation state: only now may a standby lead.
            loop.run(leadership.release())
            metrics.LEADER.set(0)
            unwatch()
            if server is not None:
                loop.run(health.stop(server))
        log.info("unogas-bot stopped: conversations saved, leadership released")
    return 0


async def _start_events(services: Services) -> EventsLink | None:
    link = EventsLink.start(services)
    if link is not None:
        metrics.watch_events(link.relay.stats, link.consumer.stats)
    return link


async def _start_health(probes: health.Probes, host: str, port: int) -> HTTPServer:
    return health.start(probes, host, port)
