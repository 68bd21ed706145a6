"""Telling a profile's owner that another Telegram account failed against it (service/strangers.py).

The alert is sent in the background, a second after the stranger's failure: whether a profile exists must
not change how long the stranger waits for an answer, nor how long their next one takes. One alert per
burst (the use case decides), in the owner's chosen language, Italian otherwise.
"""

from __future__ import annotations

import asyncio
import logging

from telegram.constants import ParseMode
from telegram.error import TelegramError

from conversations.context import BotContext
from unogas_bot.i18n import texts
from unogas_bot.i18n.texts import DEFAULT_LANGUAGE
from unogas_bot.service import strangers

log = logging.getLogger(__name__)

TASK_NAME = "tell the owner"  # the background task's name (a test waits for them)
# What failed -> the catalogue's alert.
MESSAGES = {"login": "owner_alert_login", "recovery": "owner_alert_recovery"}


def stranger_failed(context: BotContext, account_id: int | None, what: str) -> None:
    """A stranger failed a `what` check against profile `account_id` (None: no profile): tell its owner,
    in the background, unless told already in this burst."""
    if account_id is not None:
        context.application.create_task(_tell(context, account_id, what), name=TASK_NAME)


async def _tell(context: BotContext, account_id: int, what: str) -> None:
    # After the stranger's replies and unrelated to their next request (`owner_alert_delay`).
    await asyncio.sleep(context.services.settings.limits.owner_alert_delay.total_seconds())
    owner = await strangers.alert_owner(context.services, account_id, what)
    if owner is None:
        return
    lang = context.application.user_data.get(owner, {}).get("lang") or DEFAULT_LANGUAGE
    try:
        await context.bot.send_message(owner, texts.t(lang, MESSAGES[what]), parse_mode=ParseMode.HTML)
    except TelegramError as exc:  # the owner blocked the bot, or never opened a chat from this account
        log.info("could not tell a profile's owner of failed checks: %s", type(exc).__name__)
