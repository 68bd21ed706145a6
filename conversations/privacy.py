"""The privacy notice in the chat: before the registration's first question, on `/privacy`, and once to a
logged-in customer when a new version is published (the versions and their recording: service/privacy.py;
the rule of the registration's notice step: conversations/specs/privacy.py).
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ApplicationHandlerStop

from conversations.context import BotContext
from conversations.outcomes import Reply
from unogas_bot.domain import AccountView
from unogas_bot.i18n import texts
from unogas_bot.service import privacy
from unogas_bot.service.context import Services


def notice(services: Services, key: str = "privacy_notice") -> Reply:
    """The short notice with the link to the full one and its version."""
    params = {
        "url": privacy.notice_url(services),
        "version": privacy.current_version(services),
        "audit_days": services.settings.audit_retention.days,
    }
    return Reply(key, params)


async def new_notice_for(services: Services, user_id: int, account: AccountView) -> Reply | None:
    """The notice, once, to a logged-in customer who has not been shown the current version (recorded)."""
    if not await privacy.show_new_notice(services, user_id, account):
        return None
    return notice(services, "privacy_notice_new")


async def show_privacy(update: Update, context: BotContext) -> None:
    """/privacy: the notice at any time, also in the middle of a form (which then goes on where it was);
    nothing is recorded (a logged-in customer's next step does that)."""
    reply = notice(context.services)
    text = texts.t(context.language_of(update), reply.key, **reply.params)
    await context.bot.send_message(update.effective_chat.id, text, parse_mode=ParseMode.HTML)
    raise ApplicationHandlerStop
