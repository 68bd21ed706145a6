"""The console's chat session: typed lines become updates, the bot's answers printed lines.

Shared by `unogas-bot console` (cli/console.py) and the flow scripts (`flows test`, `flows record`), so a
recorded session and a replayed script read exactly like the console: `> ` lines are what the customer
typed, `bot: ` lines (continuations indented by five spaces) what the bot said. A message the bot treats as
secret (typed at a password or security-answer question, or deleted by the bot for safety) is never
written as typed, right or wrong: its echo is `SECRET_ECHO`, and a recording writes a mask that tells the
replay what kind of secret to type (secrets.py).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from conversations.draft import Draft, UnreadableDraft
from conversations.forms import FORMS
from conversations.spec import Field, Repeat, SecretPair
from unogas_bot import rules
from unogas_bot.flows.samples import placeholders_as_any
from unogas_bot.flows.secrets import (
    MASK,
    PASSWORD,
    Mark,
    SecretBook,
    comparable,
    kind_of_step,
    parse_mark,
)
from unogas_bot.i18n import texts
from unogas_bot.offline import CallbackAnswered, Deleted, Edited, Sent, SimUser
from unogas_bot.offline.events import DocumentSent

CONTACT_COMMANDS = ("/contatto", "/contact")
SHARED_PHONE = "+393471234567"  # the console player's own number, shared by «Condividi il mio numero»
SECRET_ECHO = MASK  # what a transcript shows for a password or security answer
INDENT = "     "  # continuation lines of a bot message, and lines that are not messages
ANY_TEXT = "{*}"  # what a recording writes for a secret the bot showed: a flow script's "any text"


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
        app: Any = None,
        book: SecretBook | None = None,
        notes: TextIO | None = None,
        masking: bool = True,
    ) -> None:
        self.user = user
        self.language = language
        self.out = out
        self.echo = echo
        self.transcript = transcript
        self.app = app  # the Application, to know the question being asked (None: no masks but `secret`)
        self.book = book or SecretBook()  # the secrets typed so far, in memory only
        self.notes = notes if notes is not None else sys.stderr  # where `record` says what it masked
        # Secrets typed earlier masked inside what the terminal shows; a replay (`masking` False) compares
        # what the bot said as it is.
        self.masking = masking
        self.buttons: list[tuple[str, bool]] = []  # (label, is_inline) of the last keyboard shown
        self.lines_before = 0  # lines of the recording above the transcript (its headers)
        self._lines: list[str] = []  # the recording, written by `finish`
        self._clear_inputs: list[tuple[int, str, tuple[str, str] | None]] = []  # (line, typed, question)
        self._slips: set[int] = set()  # lines of secrets typed where no secret was asked
        self._clear: set[str] = set()  # what was typed in clear: no secret, whatever the bot does with it
        self._firsts: dict[tuple[str, str], str] = {}  # a pair's first entry, until its repetition
        self._notes: list[str] = []  # what the terminal adds after the input's echo (a shared number)

    async def handle_line(self, line: str, secret: bool = False) -> None:
        """Send one typed line. A line typed at a secret question (`secret`), that the bot deleted, or
        that is a secret typed before is echoed (piped input) and recorded masked, never as typed; a
        secret inside a longer line is masked where it stands."""
        text = line.rstrip("\r\n")
        typed = text.strip()
        before = self._awaited()
        # A shown button (its number, an inline button's label) is pressed, never sent: no secret, even
        # while a secret question is open (/lingua asked there, then «2» for English).
        pressed = self._button_for(typed) is not None
        sent_before = self.user.last_message_id
        events = await self._dispatch(typed)
        own = self.user.last_message_id if self.user.last_message_id != sent_before else None
        deleted = own is not None and any(
            isinstance(e, Deleted) and e.message_id == own and e.chat_id == self.user.chat_id for e in events
        )
        # A secret typed where no secret was asked (the password at the e-mail question, a wrong one typed
        # again): the bot may keep it, the terminal and the recording do not.
        known = self.book.knows(typed) and not is_bot_command(text)
        masked = not pressed and ((secret and not is_bot_command(text)) or deleted or known)
        mark = self._mark(typed, before, self._awaited()) if masked else None
        if mark is not None:
            self.book.remember(typed, inside=mark.reason is None)
        if self.echo:
            print(f"> {SECRET_ECHO if masked else self._scrub(text)}", file=self.out, flush=True)
        if self.transcript is not None:
            if mark is not None:
                if not secret:  # a secret where none was asked: the bot's reply may quote it
                    self._slips.add(len(self._lines))
                self._record(f"> {mark.text()}")
                if mark.refused:
                    self._say_refused(mark)
            else:
                self._clear_inputs.append((len(self._lines), typed, before))
                self._record(f"> {self._recorded(typed)}")
        if mark is None:
            self._clear.add(typed)
        self._flush_notes()
        self.show(events)

    def _flush_notes(self) -> None:
        for note in self._notes:
            self._print(note)
        self._notes.clear()

    def _record(self, line: str) -> None:
        self._lines.extend(line.split("\n"))

    def finish(self) -> None:
        """Write the recording to the transcript, masking what became known as a secret after it was
        typed in clear (the password typed at the e-mail question before the password question), every
        secret inside a typed line, and every secret the bot showed (a password typed as the security
        question, in the summary) as `{*}`, which the replay's line matches whatever it typed."""
        if self.transcript is None:
            return
        for index, typed, before in self._clear_inputs:
            if self.book.knows(typed) and not is_bot_command(typed) and self._button_for(typed) is None:
                mark = self._late_mark(typed, before)
                self._lines[index] = f"> {mark.text()}"
                self._slips.add(index)
                print(
                    f"note: line {self.lines_before + index + 1}: a secret typed in clear before it was known"
                    f" is masked as `> {mark.text()}`: the replay types the script's own there",
                    file=self.notes,
                    flush=True,
                )
        slip = False  # the bot lines after a secret typed where none was asked
        for index, line in enumerate(self._lines):
            if is_input(line):
                if parse_mark(line[2:]) is None:
                    self._lines[index] = self.book.scrub(line)
                slip = index in self._slips or self._lines[index] != line
                continue
            line = self.book.scrub(line, mask=ANY_TEXT)
            self._lines[index] = _quoting_nothing(line) if slip else line
        self.transcript.write("".join(f"{line}\n" for line in self._lines))

    def _late_mark(self, typed: str, before: tuple[str, str] | None) -> Mark:
        found = self.book.find(typed)
        if found is None:
            return Mark(label=None)
        kind, label = found
        return Mark(label, kind=None if kind == kind_of_step(before[1] if before else None) else kind)

    def _say_refused(self, mark: Mark) -> None:
        number = self.lines_before + len(self._lines)
        how = f"one refused for the same reason ({mark.reason})" if mark.reason else "a wrong one"
        print(
            f"note: line {number}: a refused secret is recorded as `> {mark.text()}`: the replay types {how}",
            file=self.notes,
            flush=True,
        )

    def _awaited(self) -> tuple[str, str] | None:
        return awaited_step(self.app, self.user.user_id) if self.app is not None else None

    def _step(self, awaited: tuple[str, str] | None) -> Field | None:
        if awaited is None:
            return None
        form = next(f for f in FORMS if f.name == awaited[0])
        return form.by_key.get(awaited[1])

    def _answers(self, form: str) -> dict[str, Any]:
        try:
            draft = Draft.from_stored(self.app.user_data.get(self.user.user_id, {}).get(form))
        except (UnreadableDraft, TypeError, AttributeError):
            return {}
        return draft.answers

    def _answers_question(self, step: Field, text: str, awaited: tuple[str, str] | None) -> bool:
        """Is `text` a valid answer to the (not secret) question `step`? Then the bot keeps and shows it
        as that answer (the e-mail typed right after a lock, which the bot deletes all the same)."""
        try:
            step.parse(text, self._answers(awaited[0]) if awaited else {})
        except rules.Invalid:
            return False
        return True

    def _mark(self, text: str, before: tuple[str, str] | None, after: tuple[str, str] | None) -> Mark | None:
        """What a recording writes for a masked line; None: it is no secret (the bot deleted a line typed
        in clear before, such as the e-mail again right after a lock), written as typed."""
        step = self._step(before)
        if step is None or not step.secret:
            if self.book.knows(text):  # a secret typed before, right or wrong: a secret wherever it goes
                return self._late_mark(text, before)
            if text in self._clear or (step is not None and self._answers_question(step, text, before)):
                return None
            return Mark(label=None)
        assert before is not None
        pair = step.of if isinstance(step, Repeat) else step
        kind = kind_of_step(pair.key)
        if isinstance(step, Repeat):
            first = self._firsts.pop((before[0], pair.key), None)
            if first is None or comparable(kind, first) != comparable(kind, text):
                return Mark(label=None)
            return Mark(self.book.label(kind, first, add=True))
        if isinstance(step, SecretPair):
            try:
                step.parse(text, self._answers(before[0]))
            except rules.Invalid as bad:
                return Mark(label=None, reason=bad.reason)
            if after == before:  # refused by a check beyond the rule: the account's own data
                return Mark(label=None, reason="password.personal" if kind == PASSWORD else None)
            self._firsts[(before[0], pair.key)] = text
            return Mark(self.book.label(kind, text, add=True))
        label = self.book.label(kind, text, add=False)  # checked against the account: known, or wrong
        return Mark(label) if label is not None else Mark(label=None)

    async def press(self, label: str) -> bool:
        """Press the shown button labelled `label` (a flow script's `> [label]`); False when none is."""
        for shown, _ in self.buttons:
            if shown.casefold() == label.casefold():
                if self.transcript is not None:
                    self._record(f"> [{shown}]")
                events = await self._pressed(shown)
                self._flush_notes()
                self.show(events)
                return True
        return False

    def _recorded(self, text: str) -> str:
        choice = self._button_for(text)
        return f"[{choice[0]}]" if choice is not None else text

    async def _dispatch(self, text: str) -> list[object]:
        word, _, rest = text.partition(" ")
        if word.lower() in CONTACT_COMMANDS:
            return await self._share(rest.strip() or "+393470000000")
        choice = self._button_for(text)
        if choice is not None:
            return await self._pressed(choice[0])
        return await self.user.send(text)

    async def _pressed(self, label: str) -> list[object]:
        inline = dict(self.buttons).get(label, False)
        if inline:
            return await self.user.press(label)
        if label in (texts.t("it", "btn_share_phone"), texts.t("en", "btn_share_phone")):
            return await self._share(SHARED_PHONE)
        return await self.user.send(label)

    async def _share(self, phone: str) -> list[object]:
        """Share a contact as Telegram's button does; the terminal says which number went (a customer
        sees it in the chat, a console user would not otherwise)."""
        self._notes.append(INDENT + texts.t(self.language, "console_shared", phone=phone))
        return await self.user.share_contact(phone)

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
            elif isinstance(event, DocumentSent):
                self._print(INDENT + texts.t(self.language, "console_document", name=event.filename))
            elif isinstance(event, Deleted):
                self._print(INDENT + texts.t(self.language, "console_deleted"))
            elif isinstance(event, Edited) and event.reply_markup is None and event.text is None:
                self.buttons = [b for b in self.buttons if not b[1]]

    def _scrub(self, text: str) -> str:
        return self.book.scrub(text) if self.masking else text

    def _print(self, text: str) -> None:
        print(self._scrub(text), file=self.out, flush=True)
        if self.transcript is not None:
            self._record(text)


# Commands every chat knows besides the forms' own (bot/wiring.py): typed at a secret question they are
# commands, never answers (the bot does not delete them), so they are echoed and recorded as typed.
_COMMANDS = {
    "start",
    "aiuto",
    "help",
    "annulla",
    "cancel",
    "indietro",
    "back",
    "lingua",
    "language",
    "privacy",
    "profilo",
    "profile",
    "esci",
    "logout",
    "contatto",
    "contact",
    "quit",
    "esci_console",
}


def _quoting_nothing(line: str) -> str:
    """A bot line of the reply to a secret typed where none was asked, with whatever its catalogue text
    filled in as `{*}`: the reply may quote the secret (the characters a phone number cannot have, its
    length), and the replay types another one."""
    head = "bot: " if line.startswith("bot: ") else line[: len(line) - len(line.lstrip())]
    pattern = placeholders_as_any(line[len(head) :])
    return line if pattern is None else head + pattern


def is_input(line: str) -> bool:
    """Is this line of a recording something the customer typed (`> ...`)?"""
    return line == ">" or line.startswith("> ")


def is_bot_command(text: str) -> bool:
    """Is `text` one of the bot's commands (`/annulla`, `/accedi@UnogasBot`, `/cambia_email` ...)?"""
    word = text.strip().split(" ", 1)[0]
    if not word.startswith("/"):
        return False
    name = word[1:].split("@", 1)[0].lower()
    return name in _COMMANDS or any(name in form.spec.entry_commands for form in FORMS)


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
