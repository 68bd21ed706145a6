"""The logged-in customer's one-message commands: `/profilo` (`/profile`) and `/esci` (`/logout`).

Not forms: nothing is asked, so a plain command handler each, calling one use case each
(service/session.py). Both read the session from the database, so a session ended elsewhere (password
recovered, account deleted, 30 days passed) is ended here too.
"""

from __future__ import annotations

from telegram import Update

from conversations.context import BotContext
from conversations.login import display_name
from unogas_bot import rules
from unogas_bot.domain import AccountView
from unogas_bot.i18n import texts
from unogas_bot.service import session


def profile_html(lang: str, account: AccountView) -> str:
    """The profile as shown in the chat: tax code and phone partly masked, no secret of course."""

    def line(label: str, value: str) -> str:
        return texts.t(lang, "summary_line", label=texts.t(lang, label), value=value)

    phone = rules.masks.phone(account.phone) if account.phone else texts.t(lang, "phone_none")
    lines = [
        line("label_customer_code", account.customer_code),
        line("label_holder", display_name(account)),
        line("label_tax_code", rules.masks.tax_code(account.tax_code)),
        line("label_email", account.email),
        line("label_phone", phone),
        line("label_question", account.security_question),
        line("label_registered", account.registered_at.strftime("%d/%m/%Y")),
    ]
    return texts.t(lang, "profile", lines=texts.Raw("\n".join(lines)))


async def show_profile(update: Update, context: BotContext) -> None:
    lang = context.language_of(update)
    user_id = update.effective_user.id
    account = await session.profile_view(context.services, user_id)
    if account is None:
        await context.send_html(update, texts.t(lang, "profile_not_logged_in"))
        return
    await context.send_html(update, profile_html(lang, account))


async def logout(update: Update, context: BotContext) -> None:
    lang = context.language_of(update)
    logged_out = await session.log_out(context.services, update.effective_user.id)
    await context.send_html(update, texts.t(lang, "logout_ok" if logged_out else "logout_not_logged_in"))
