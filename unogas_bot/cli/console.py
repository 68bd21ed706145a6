"""Terminal mode: the very same Application, talking to the offline Bot API stand-in instead of Telegram.

Each input line is one message. Buttons are shown numbered: type the number or the label to press one.
`/contatto NUMBER` shares a phone contact as Telegram's "share my number" button does. Works interactively
and with piped input (the input is echoed then, so a replayed script reads like a chat). Conversations are
kept in the database as in `run`, so a console started again (even after a crash) resumes where the last one
stopped; its opening "/start" then meets the conversation in progress and repeats the pending question.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TextIO

from storage.db import Database
from storage.persistence import SqlPersistence
from unogas_bot.bot.app import FORMS, build_application
from unogas_bot.cli.common import with_database
from unogas_bot.config import Settings
from unogas_bot.i18n import texts
from unogas_bot.offline import (
    Deleted,
    Edited,
    OfflineBotAPI,
    Sent,
    Simulator,
    SimUser,
    offline_builder,
)
from unogas_bot.service.context import Services

CONTACT_COMMANDS = ("/contatto", "/contact")
QUIT_WORDS = ("/quit", "/esci_console")


class ConsoleSession:
    """Turns lines into updates and the bot's answers into printed lines."""

    def __init__(self, user: SimUser, out: TextIO, echo: bool, language: str = "it") -> None:
        self.user = user
        self.language = language
        self.out = out
        self.echo = echo
        self.buttons: list[tuple[str, bool]] = []  # (label, is_inline) of the last keyboard shown

    async def handle_line(self, line: str, secret: bool = False) -> None:
        """Send one typed line; when echoing (piped input), a secret is shown masked, never as typed."""
        text = line.rstrip("\r\n")
        if self.echo:
            self._print(f"> {SECRET_ECHO if secret else text}")
        events = await self._dispatch(text.strip())
        self.show(events)

    async def _dispatch(self, text: str) -> list[object]:
        word, _, rest = text.partition(" ")
        if word.lower() in CONTACT_COMMANDS:
            return await self.user.share_contact(rest.strip() or "+393470000000")
        choice = self._button_for(text)
        if choice is not None:
            label, inline = choice
            if inline:
                return await self.user.press(label)
            if label == texts.t("it", "btn_share_phone") or label == texts.t("en", "btn_share_phone"):
                return await self.user.share_contact("+393471234567")
            return await self.user.send(label)
        return await self.user.send(text)

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
                self._print("bot: " + event.plain_text.replace("\n", "\n     "))
                labels = event.buttons
                if labels:
                    inline = bool(event.reply_markup and "inline_keyboard" in event.reply_markup)
                    self.buttons = [(label, inline) for label in labels]
                    self._print("     " + "  ".join(f"[{i}] {label}" for i, label in enumerate(labels, 1)))
                elif event.reply_markup and event.reply_markup.get("remove_keyboard"):
                    self.buttons = []
            elif isinstance(event, Deleted):
                self._print("     " + texts.t(self.language, "console_deleted"))
            elif isinstance(event, Edited) and event.reply_markup is None and event.text is None:
                self.buttons = [b for b in self.buttons if not b[1]]

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


SECRET_ECHO = "••••••••"  # what a piped session prints for a password or security answer


def _expects_secret(app: object, user_id: int) -> bool:
    """Is the question waiting for this user a secret (so an interactive terminal should not echo it)?"""
    data = app.user_data.get(user_id, {})  # type: ignore[attr-defined]
    for form in FORMS:
        draft = data.get(form.name)
        if draft:
            f = form.by_key.get(draft.get("_at", ""))
            return bool(f and (f.secret or f.confirms))
    return False


# Telegram user ids have at most 52 significant bits (Bot API, User.id): above them, the console's default
# player can never be a real customer, even when support staff run the console on the production database.
CONSOLE_USER_ID = 2**52 + 424242


async def run_console(
    settings: Settings,
    *,
    user_id: int = CONSOLE_USER_ID,
    language: str = "it",
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    db: Database | None = None,
) -> int:
    """Chat in the terminal until end of input or /quit; `db` (schema up to date) is closed at the end."""
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty()
    if db is None:
        db = Database(settings.database_url)
        await db.upgrade()
    services = Services.create(settings, db)
    api = OfflineBotAPI()
    # Conversations are kept in the database as with `run`: a new console picks up where the last one stopped.
    app = build_application(services, builder=offline_builder(api), persistence=SqlPersistence(db))
    try:
        async with Simulator(app, api) as sim:
            user = sim.user(user_id, first_name="Cliente", language_code=language)
            session = ConsoleSession(user, out, echo=not interactive, language=texts.language_for(language))
            if interactive:
                print(texts.t(language, "console_banner"), file=out, flush=True)
            await session.handle_line("/start")
            while True:
                secret = _expects_secret(app, user_id)
                if interactive and secret:
                    line = await asyncio.to_thread(getpass.getpass, "(nascosto) > ")
                else:
                    if interactive:
                        print("> ", end="", file=out, flush=True)
                    line = await asyncio.to_thread(stdin.readline)
                    if not line:
                        break
                if line.strip().lower() in QUIT_WORDS:
                    break
                if line.strip():
                    await session.handle_line(line, secret=secret)
    finally:
        await services.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = sub.add_parser("console", help="the same conversations in the terminal, offline")
    console.add_argument(
        "--user-id",
        type=int,
        help="the Telegram user id to play (default: one Telegram never assigns, so no real customer's)",
    )
    console.add_argument("--language", default="it", help="the user's Telegram language code (it, en)")


def cmd_console(settings: Settings, args: argparse.Namespace) -> int:
    player = {} if args.user_id is None else {"user_id": args.user_id}

    async def work(db: Database) -> int:
        return await run_console(settings, language=args.language, db=db, **player)

    return with_database(settings, work)  # an unreachable database: one line, as for every command


COMMANDS = {("console", None): cmd_console}
