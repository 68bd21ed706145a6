"""One update being handled by a form: who, in which language, with which draft, and how to answer."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.constants import ParseMode

from conversations.context import BotContext
from conversations.draft import Answers, Draft, UnreadableDraft
from conversations.outcomes import Markup, Reply
from unogas_bot.i18n import texts
from unogas_bot.service.context import Services

if TYPE_CHECKING:
    from conversations.form import Form

log = logging.getLogger(__name__)


def read_draft(stored: object) -> Draft | None:
    """The stored draft as a `Draft` (a copy), or None when there is none or it cannot be read; an
    unreadable one is then handled as an expired one, the customer told and starting again."""
    if not stored:
        return None
    try:
        return Draft.from_stored(stored)
    except UnreadableDraft as exc:
        log.warning("a stored draft could not be read and counts as expired: %s", exc)
        return None


class Turn:
    """One update being handled: who, in which language, with which draft, and how to answer."""

    def __init__(self, update: Update, context: BotContext, form: Form, draft: Draft) -> None:
        self.update = update
        self.context = context
        self.form = form
        self.draft = draft
        user = update.effective_user
        self.user_id: int = user.id if user else 0
        self.chat_id: int = update.effective_chat.id if update.effective_chat else self.user_id
        self.lang = context.language_of(update)

    @property
    def services(self) -> Services:
        return self.context.services

    @property
    def answers(self) -> Answers:
        return self.draft.answers

    def now(self) -> datetime:
        return self.services.clock()

    def text(self, key: str, **params: Any) -> str:
        return texts.t(self.lang, key, **params)

    async def send(self, reply: Reply) -> Message:
        return await self.send_html(self.text(reply.key, **reply.params), reply.markup)

    async def send_html(self, html: str, markup: Markup = None) -> Message:
        """Send catalogue-built HTML; the only way a form talks to the customer."""
        if markup is None and self.draft.reply_keyboard:
            # The previous question showed a reply keyboard: take it away with the next message.
            markup = ReplyKeyboardRemove()
        if markup is not None and not isinstance(markup, InlineKeyboardMarkup):
            self.draft.reply_keyboard = isinstance(markup, ReplyKeyboardMarkup)
        return await self.context.bot.send_message(
            self.chat_id, html, parse_mode=ParseMode.HTML, reply_markup=markup
        )
