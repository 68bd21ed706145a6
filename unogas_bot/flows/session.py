"""The console's chat session: typed lines become updates, the bot's answers printed lines.

Shared by `unogas-bot console` (cli/console.py) and the flow scripts (`flows test`, `flows record`), so a
recorded session and a replayed script read exactly like the console: `> ` lines are what the customer
typed, `bot: ` lines (continuations indented by five spaces) what the bot said. A password or security
answer is never written as typed: its echo is `SECRET_ECHO`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from unogas_bot.bot.app import FORMS
from unogas_bot.i18n import texts
from unogas_bot.offline import CallbackAnswered, Deleted, Edited, Sent, SimUser

CONTACT_COMMANDS = ("/contatto", "/contact")
SECRET_ECHO = "••••••••"  # what a transcript shows for a password or security answer
INDENT = "     "  # continuation lines of a bot message, and lines that are not messages


class ConsoleSession:
    """Turns lines into updates and the bot's answers into printed lines.

    `out` gets what the terminal shows (the input echoed only when `echo`, i.e. piped input); `transcript`,
    when given, gets the whole session as a flow script records it: every input (a button press as
    `> [label]`, a secret masked) and every line the bot printed.
    """

    def __init__(
        self,
        user: SimUser,
        out: TextIO,
        echo: bool,
        language: str = "it",
        transcript: TextIO | None = None,
    ) -> None:
        self.user = user
        self.language = language
        self.out = out
        self.echo = echo
        self.transcript = transcript
        self.buttons: list[tuple[str, bool]] = []  # (label, is_inline) of the last keyboard shown

    async def handle_line(self, line: str, secret: bool = False) -> None:
        """Send one typed line; when echoing (piped input), a secret is shown masked, never as typed."""
        text = line.rstrip("\r\n")
        if self.echo:
            print(f"> {SECRET_ECHO if secret else text}", file=self.out, flush=True)
        if self.transcript is not None:
            print(f"> {self._recorded(text.strip(), secret)}", file=self.transcript)
        events = await self._dispatch(text.strip())
        self.show(events)

    async def press(self, label: str) -> bool:
        """Press the shown button labelled `label` (a flow script's `> [label]`); False when none is."""
        for shown, _ in self.buttons:
            if shown.casefold() == label.casefold():
                if self.transcript is not None:
                    print(f"> [{shown}]", file=self.transcript)
                self.show(await self._pressed(shown))
                return True
        return False

    def _recorded(self, text: str, secret: bool) -> str:
        if secret:
            return SECRET_ECHO
        choice = self._button_for(text)
        return f"[{choice[0]}]" if choice is not None else text

    async def _dispatch(self, text: str) -> list[object]:
        word, _, rest = text.partition(" ")
        if word.lower() in CONTACT_COMMANDS:
            return await self.user.share_contact(rest.strip() or "+393470000000")
        choice = self._button_for(text)
        if choice is not None:
            return await self._pressed(choice[0])
        return await self.user.send(text)

    async def _pressed(self, label: str) -> list[object]:
        inline = dict(self.buttons).get(label, False)
        if inline:
            return await self.user.press(label)
        if label in (texts.t("it", "btn_share_phone"), texts.t("en", "btn_share_phone")):
            return await self.user.share_contact("+393471234567")
        return await self.user.send(label)

    def _button_for(self, text: str) -> tuple[str, bool] | None:
        if text.isdigit() and 1 <= int(text) <= len(self.buttons):
            return self.buttons[int(text) - 1]
        for label, inline in self.buttons:
            if inline and label.casefold() == text.casefold():
                return label, inline
        return None

    def show(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, Sent):
                self._print("bot: " + event.plain_text.replace("\n", "\n" + INDENT))
                labels = event.buttons
                if labels:
                    inline = bool(event.reply_markup and "inline_keyboard" in event.reply_markup)
                    self.buttons = [(label, inline) for label in labels]
                    self._print(INDENT + "  ".join(f"[{i}] {label}" for i, label in enumerate(labels, 1)))
                elif event.reply_markup and event.reply_markup.get("remove_keyboard"):
                    self.buttons = []
            elif isinstance(event, CallbackAnswered) and event.text:
                # Telegram shows it for a moment over the chat (a stale button's notice): print it too.
                self._print("bot: " + event.text)
            elif isinstance(event, Deleted):
                self._print(INDENT + texts.t(self.language, "console_deleted"))
            elif isinstance(event, Edited) and event.reply_markup is None and event.text is None:
                self.buttons = [b for b in self.buttons if not b[1]]

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)
        if self.transcript is not None:
            print(text, file=self.transcript)


def awaited_step(app: Any, user_id: int) -> tuple[str, str] | None:
    """(form, step key) of the question waiting for this user, or None outside a form."""
    data: Mapping[str, Any] = app.user_data.get(user_id, {})
    for form in FORMS:
        draft = data.get(form.name)
        if draft:
            return form.name, str(draft.get("_at", ""))
    return None


def expects_secret(app: Any, user_id: int) -> bool:
    """Is the question waiting for this user a secret (so an interactive terminal should not echo it)?"""
    awaited = awaited_step(app, user_id)
    if awaited is None:
        return False
    form = next(f for f in FORMS if f.name == awaited[0])
    step = form.by_key.get(awaited[1])
    return bool(step and (step.secret or step.confirms))
