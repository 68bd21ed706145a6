"""The callback context every handler receives: PTB's, with our services and the user's language."""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackContext, ExtBot

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
