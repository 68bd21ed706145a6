"""Terminal mode: the very same Application, talking to the offline Bot API stand-in instead of Telegram.

Each input line is one message. Buttons are shown numbered: type the number or the label to press one.
`/contatto NUMBER` shares a phone contact as Telegram's "share my number" button does. Works interactively
and with piped input (the input is echoed then, so a replayed script reads like a chat). Conversations are
kept in the database as in `run`, so a console started again (even after a crash) resumes where the last one
stopped; its opening "/start" then meets the conversation in progress and repeats the pending question.
`--fresh` forgets the player's saved state first, to try a flow from its beginning.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import io
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TextIO

from conversations.forms import FORMS
from conversations.spec import SUMMARY
from storage.db import Database
from storage.persistence import SqlPersistence, forget_private_chat
from unogas_bot.bot.wiring import build_application
from unogas_bot.cli.common import CliError, telegram_user_id, with_database
from unogas_bot.clock import utcnow
from unogas_bot.config import Settings
from unogas_bot.flows.secrets import SecretBook
from unogas_bot.flows.session import SECRET_ECHO, ConsoleSession, awaited_step, expects_secret
from unogas_bot.i18n import texts
from unogas_bot.offline import OfflineBotAPI, Simulator, offline_builder
from unogas_bot.service.context import Services

__all__ = ["CONSOLE_USER_ID", "SECRET_ECHO", "run_console"]

QUIT_WORDS = ("/quit", "/esci_console")
CONSOLE_HASH_BUDGET = 1000  # bcrypt hashes or checks a minute for the console's player (see cmd_console)


# Telegram user ids have at most 52 significant bits (Bot API, User.id): above them, the console's default
# player can never be a real customer, even when support staff run the console on the production database.
CONSOLE_USER_ID = 2**52 + 424242


class EndedMidForm(CliError):
    """Piped input ended while a form was waiting for an answer: a script that stopped short."""


async def run_console(
    settings: Settings,
    *,
    user_id: int = CONSOLE_USER_ID,
    language: str = "it",
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    db: Database | None = None,
    transcript: TextIO | None = None,
    persistent: bool = True,
    clock: Callable[[], datetime] = utcnow,
    prepare: Callable[[Services], Awaitable[SecretBook | None]] | None = None,
    lines_before: int = 0,
) -> int:
    """Chat in the terminal until end of input or /quit; `db` (schema up to date) is closed at the end.
    `transcript` gets the session as a flow script records it (`flows record`; `lines_before`: the lines
    above it, for the notes that name a line); without `persistent` conversations live only in memory (a
    throwaway database needs no resuming). `prepare` runs on the services before the chat starts (a
    recording's fixture) and may return the secrets it set. Piped input that ends in the middle of a form
    raises `EndedMidForm`, naming the question left unanswered."""
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    interactive = stdin.isatty()
    if db is None:
        db = Database(settings.database_url)
        await db.upgrade()
    services = Services.create(settings, db, clock=clock)
    api = OfflineBotAPI()
    # Conversations are kept in the database as with `run`: a new console picks up where the last one stopped.
    persistence = SqlPersistence(db) if persistent else None
    app = build_application(services, builder=offline_builder(api), persistence=persistence)
    stopped: tuple[str, str] | None = None
    terminal = _terminal_state(stdin) if interactive else None
    try:
        book = await prepare(services) if prepare is not None else None
        async with Simulator(app, api) as sim:
            user = sim.user(user_id, first_name="Cliente", language_code=language)
            lang = texts.language_for(language)
            session = ConsoleSession(
                user, out, echo=not interactive, language=lang, transcript=transcript, app=app, book=book
            )
            session.lines_before = lines_before
            if interactive:
                print(texts.t(language, "console_banner"), file=out, flush=True)
            try:
                stopped = await _chat(session, app, user_id, stdin, out, interactive, language)
            finally:  # Ctrl-C too: what was recorded is written, with its late masks
                session.finish()
    finally:
        _restore_terminal(stdin, terminal)  # getpass left off by Ctrl-C would leave the echo off
        await services.close()
    if stopped is not None:
        raise EndedMidForm(where_it_stopped(*stopped, texts.language_for(language)))
    return 0


async def _chat(
    session: ConsoleSession,
    app: Any,
    user_id: int,
    stdin: TextIO,
    out: TextIO,
    interactive: bool,
    language: str,
) -> tuple[str, str] | None:
    """Read and send lines until the end of input or /quit; returns the question left open when piped
    input ended in the middle of a form."""
    await session.handle_line("/start")
    while True:
        secret = expects_secret(app, user_id)
        if interactive and secret:
            prompt = texts.t(language, "console_hidden_prompt")
            try:
                line = await read_in_background(getpass.getpass, prompt)
            except EOFError:  # Ctrl-D at the hidden prompt: the end, as at any other
                print(file=out, flush=True)
                return None
        else:
            if interactive:
                print("> ", end="", file=out, flush=True)
            line = await read_in_background(stdin.readline)
            if not line:
                return None if interactive else awaited_step(app, user_id)
        if line.strip().lower() in QUIT_WORDS:
            return None
        if line.strip():
            await session.handle_line(line, secret=secret)


async def read_in_background(read: Callable[..., str], *args: object) -> str:
    """`read(*args)` (a blocking read of the terminal or the pipe) in a daemon thread: Ctrl-C ends the
    console at once, where a worker thread of the event loop's executor would be waited for until Enter."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def settle(result: str | None, error: BaseException | None) -> None:
        if done.done():  # the console was stopped meanwhile
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result or "")

    def work() -> None:
        try:
            result = read(*args)
        except BaseException as exc:  # EOFError from getpass, an OSError of a closed terminal
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=work, name="console input", daemon=True).start()
    return await done


def _terminal_state(stdin: TextIO) -> list[Any] | None:
    try:
        import termios

        return termios.tcgetattr(stdin.fileno())
    except (ImportError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _restore_terminal(stdin: TextIO, state: list[Any] | None) -> None:
    if state is None:
        return
    import termios

    with contextlib.suppress(OSError, ValueError):
        termios.tcsetattr(stdin.fileno(), termios.TCSADRAIN, state)


def where_it_stopped(form: str, step: str, lang: str = "it") -> str:
    """One line for a piped session that ended with a question open: the form, and the question."""
    found = next((f for f in FORMS if f.name == form), None)
    if step == SUMMARY or found is None or step not in found.by_key:
        question = "its summary, waiting for «Salva»" if step == SUMMARY else f"its step {step!r}"
    else:
        spec = found.spec
        wording = texts.t(lang, spec.question_key(found.by_key[step], {})).split("\n")[0]
        question = f"its question {step!r} («{re.sub(r'<[^>]+>', '', wording)}»)"
    return f"the input ended in the middle of the {form} form, at {question}: the form was not completed"


async def forget_saved_state(db: Database, user_id: int) -> None:
    """Delete what the persistence keeps of `user_id` in its private chat: user data (drafts, language),
    chat data and the state of every conversation. Only that user's rows: the console may run on the
    production database, where everyone else's conversations must stay."""
    await forget_private_chat(db, user_id)


def console_language(code: str) -> str:
    """The `--language` given as a Telegram language code ("en", "en-GB"); one the bot has no catalogue
    for is refused rather than silently played in Italian, which would hide what was meant to be tried."""
    primary = code.strip().lower().split("-")[0]
    if primary not in texts.LANGUAGES:
        raise CliError(f"unknown language {code!r}: the bot speaks {', '.join(texts.LANGUAGES)}")
    return code.strip()


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = sub.add_parser("console", help="the same conversations in the terminal, offline")
    console.add_argument(
        "--user-id",
        type=telegram_user_id,
        help="the Telegram user id to play (default: one Telegram never assigns, so no real customer's)",
    )
    console.add_argument("--language", default="it", help="the user's Telegram language code (it, en)")
    console.add_argument(
        "--fresh",
        action="store_true",
        help="forget the player's saved conversation state first, instead of resuming the last session",
    )


def cmd_console(settings: Settings, args: argparse.Namespace) -> int:
    language = console_language(args.language)
    user_id = CONSOLE_USER_ID if args.user_id is None else args.user_id

    # The per-Telegram-user bcrypt budget guards the bot's CPU against a flooding chat; the console's one
    # player is the operator at this terminal, whose piped session (a registration, a login, a recovery:
    # scripts/demo-session.txt) needs more than 6 hashes a minute. The attempt limits all stay.
    settings = dataclasses.replace(
        settings, limits=dataclasses.replace(settings.limits, hash_budget_per_user=CONSOLE_HASH_BUDGET)
    )

    async def work(db: Database) -> int:
        if args.fresh:
            await forget_saved_state(db, user_id)
        return await run_console(settings, user_id=user_id, language=language, db=db)

    return with_database(settings, work)  # an unreachable database: one line, as for every command


COMMANDS = {("console", None): cmd_console}
