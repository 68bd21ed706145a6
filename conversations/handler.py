"""A form as python-telegram-bot's ConversationHandler: its entry commands, the step engine's handlers in
every state, and the fallbacks (`/annulla`, `/aiuto`, `/indietro`, other commands, stale buttons)."""

from __future__ import annotations

import warnings
from collections.abc import Collection

from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from conversations.engine import FormEngine
from conversations.form import Form


def form_handler(form: Form, persistent: bool = False, others: Collection[str] = ()) -> ConversationHandler:
    """The form's ConversationHandler. `others` names the forms a customer must not be in at the same
    time (see ``FormEngine.start``)."""
    engine = FormEngine(form, others)
    private = filters.ChatType.PRIVATE
    in_state: list[BaseHandler] = [
        CallbackQueryHandler(engine.on_button, pattern=f"^{form.name}\\|"),
        # Only new messages answer a question: editing an old message must not change an answer.
        MessageHandler(
            private & filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, engine.on_text
        ),
        MessageHandler(private & filters.UpdateType.MESSAGE & filters.CONTACT, engine.on_contact),
    ]
    with warnings.catch_warnings():
        # PTB warns that callback queries are not tracked per message: intended, the serial in the
        # callback data already tells a button of the current question from an old one.
        warnings.filterwarnings("ignore", message=".*per_message.*", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=_entry_points(form, engine, private),
            states={state: in_state for state in form.spec.states},
            fallbacks=[
                CommandHandler(["annulla", "cancel"], engine.cancel),
                CommandHandler(["aiuto", "help"], engine.help),
                CommandHandler(["indietro", "back"], engine.back),
                MessageHandler(filters.COMMAND, engine.other_command),
                CallbackQueryHandler(engine.stale_button),
                MessageHandler(private & ~filters.UpdateType.EDITED, engine.not_text),
            ],
            allow_reentry=True,
            name=form.name,
            persistent=persistent,
        )


def _entry_points(form: Form, engine: FormEngine, private: filters.BaseFilter) -> list[BaseHandler]:
    commands = list(form.spec.entry_commands)
    points: list[BaseHandler] = [CommandHandler(commands, engine.start, filters=private)]
    if form.spec.deep_link:
        # Only the flow is chosen by the payload: nothing in it is trusted as identity.
        link = filters.Regex(f"^/start {form.spec.deep_link}$")
        points.append(CommandHandler("start", engine.start, filters=private & link))
    return points
