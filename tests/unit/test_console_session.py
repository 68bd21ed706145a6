"""What the terminal mode prints for each thing the bot does (unogas_bot/flows/session.py): no bot needed."""

from __future__ import annotations

import io

from unogas_bot.flows.session import ConsoleSession
from unogas_bot.offline import CallbackAnswered


def test_a_notice_over_the_chat_is_printed_like_a_message() -> None:
    """A stale button's notice is all a customer sees when they press one: the terminal shows it too."""
    out = io.StringIO()
    session = ConsoleSession(user=None, out=out, echo=False)  # type: ignore[arg-type]
    session.show([CallbackAnswered("1", "Questo pulsante non è più attivo.", False)])
    session.show([CallbackAnswered("2", None, False)])  # a press answered silently prints nothing
    assert out.getvalue() == "bot: Questo pulsante non è più attivo.\n"
