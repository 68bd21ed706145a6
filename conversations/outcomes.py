"""What a form's step decides: say something and ask (which question), or finish. A form's hooks return
these; the step engine (conversations/engine.py) carries them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telegram import ForceReply, InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply | None


@dataclass
class Reply:
    """A message for the customer: a catalogue key with its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    markup: Markup = None


@dataclass
class Ask:
    """Say `notes`, then ask `field` (None: the next missing step, after any checkpoint due)."""

    notes: list[Reply] = field(default_factory=list)
    field: str | None = None


@dataclass
class Finish:
    """Say `notes` and end the conversation, forgetting the draft."""

    notes: list[Reply] = field(default_factory=list)


Outcome = Ask | Finish
