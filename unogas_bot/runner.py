"""Running the bot for real on Telegram: long polling (and, later, a webhook)."""

from __future__ import annotations

import asyncio
import logging

from telegram import BotCommand, BotCommandScopeDefault
from telegram.ext import Application

from storage.db import Database
from unogas_bot import texts
from unogas_bot.app import build_application
from unogas_bot.config import Settings
from unogas_bot.services import Services

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
    ),
}


async def publish_commands(app: Application) -> None:
    """Register the command menu: Italian by default, English for English-speaking clients."""
    for lang, commands in MENU.items():
        menu = [BotCommand(name, texts.t(lang, key)) for name, key in commands]
        code = None if lang == texts.DEFAULT_LANGUAGE else lang
        await app.bot.set_my_commands(menu, scope=BotCommandScopeDefault(), language_code=code)


def run_polling(settings: Settings) -> int:
    """Bring the schema up to date, then serve Telegram until interrupted."""

    async def prepare() -> Services:
        db = Database(settings.database_url)
        await db.upgrade()
        return Services.create(settings, db)

    services = asyncio.run(prepare())

    async def post_init(app: Application) -> None:
        await publish_commands(app)

    async def post_shutdown(app: Application) -> None:
        await services.close()

    app = build_application(services)
    app.post_init = post_init
    app.post_shutdown = post_shutdown
    log.warning("unogas-bot is running on Telegram (long polling); Ctrl+C stops it")
    app.run_polling(allowed_updates=["message", "edited_message", "callback_query"])
    return 0
