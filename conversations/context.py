"""The callback context every handler receives: PTB's, with our services and the user's language."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import CallbackContext, ExtBot

from unogas_bot.i18n import texts
from unogas_bot.i18n.texts import language_for
from unogas_bot.service.context import Services


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """The callback context our handlers receive: adds `services` and the user's language."""

    @property
    def services(self) -> Services:
        return self.application.services  # type: ignore[attr-defined]

    def language_of(self, update: object) -> str:
        """The language to answer `update`'s user in: the one chosen with /lingua, else Telegram's."""
        chosen = self.user_data.get("lang") if self.user_data is not None else None
        if chosen:
            return chosen
        user = update.effective_user if isinstance(update, Update) else None
        return language_for(user.language_code if user else None)

    async def say(self, update: Update, key: str, **params: object) -> None:
        """Answer in `update`'s chat with the catalogue's message `key`, in the user's language."""
        await self.send_html(update, texts.t(self.language_of(update), key, **params))

    async def send_html(self, update: Update, html: str) -> None:
        """Answer in `update`'s chat with catalogue-built HTML (a chat-less update gets nothing)."""
        if update.effective_chat is not None:
            await self.bot.send_message(update.effective_chat.id, html, parse_mode=ParseMode.HTML)
