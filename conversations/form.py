"""The form base class: a `FormSpec` and the hooks where a form calls the use cases. How it becomes a PTB
handler is conversations/handler.py; how a step runs is conversations/engine.py."""

from __future__ import annotations

from typing import Any, ClassVar

from telegram import InlineKeyboardMarkup

from conversations.outcomes import Finish, Outcome
from conversations.spec import Checkpoint, Field, FormSpec
from conversations.turn import Turn


class Form:
    """A conversation: a `FormSpec` and the hooks where it calls the service layer. Subclasses set `spec`
    and override the hooks they need."""

    spec: ClassVar[FormSpec]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def by_key(self) -> dict[str, Field]:
        """The steps by key (the console asks whether the current one is a secret)."""
        return self.spec.by_key

    # hooks ------------------------------------------------------------------------------------------
    async def on_start(self, turn: Turn) -> Outcome | None:
        """Called when the form starts, before the first question (e.g. refuse a logged-in user)."""
        return None

    async def on_value(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        """Called after a valid answer is kept (for a consumed secret, instead of keeping it)."""
        return None

    async def on_checkpoint(self, turn: Turn, checkpoint: Checkpoint) -> Outcome:
        """A checkpoint is due (see `Checkpoint`): check, keep its result in the answers, or forget the
        checked answers. An `Ask` without a field goes on to the next question."""
        raise NotImplementedError(f"{self.name} declares checkpoint {checkpoint.key} but does not check it")

    async def complete(self, turn: Turn) -> Outcome:
        """All steps are answered and the form has no summary: act (e.g. set the new password)."""
        return Finish()

    def summary(self, turn: Turn) -> str:
        """The summary shown before saving (forms with `has_summary`), as catalogue-built HTML."""
        return ""

    async def on_summary(self, turn: Turn, action: str) -> Outcome:
        """A summary button (or its typed label) was chosen."""
        return Finish()

    def summary_markup(self, turn: Turn) -> InlineKeyboardMarkup | None:
        return None

    def summary_action(self, text: str) -> str | None:
        """A typed reply at the summary, mapped to a summary action (e.g. "salva" → "save")."""
        return None

    def callback_data(self, turn: Turn, action: str, serial: int | None = None) -> str:
        """A button's data: the form, the serial of the question it belongs to (this one's by default),
        and the action; a button of an older question is told apart by its serial."""
        return f"{self.name}|{turn.draft.serial if serial is None else serial}|{action}"
