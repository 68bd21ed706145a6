"""The privacy notice's step: the rule of its "Continue" button (the notice: conversations/privacy.py)."""

from __future__ import annotations

from unogas_bot import rules

ACCEPT = "accept"  # the value of the notice's "Continue" button
_TYPED = frozenset({"continua", "continue", "ok", "avanti", "prosegui"})


def acknowledge(text: str) -> str:
    """The rule of the notice's step: its button, or the word on it typed (the terminal mode)."""
    if text.strip().casefold() in _TYPED:
        return ACCEPT
    raise rules.Invalid("privacy.continue")
