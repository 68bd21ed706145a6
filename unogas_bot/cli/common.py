"""What every command shares: the one-line failure, a database brought up to date first, and the support
operator named in the audit trail of every command that changes or reveals an account."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path

from storage.db import Database
from unogas_bot.config import Settings


class CliError(Exception):
    """A failure to report as one line on stderr."""


MAX_USER_ID = 2**63 - 1  # what the database's user id columns hold (Telegram's ids have 52 bits)


def telegram_user_id(text: str) -> int:
    """`--user-id`: a Telegram user id, 1 to 2^63-1 (0, a negative or a bigger one was a traceback or the
    bot's internal error on every message)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_USER_ID:
        raise argparse.ArgumentTypeError(
            f"not a Telegram user id (a whole number from 1 to 2^63-1): {text!r}"
        )
    return value


def with_database(settings: Settings, work: Callable[[Database], Awaitable[int | None]]) -> int:
    async def go() -> int | None:
        db = Database(settings.database_url)
        try:
            try:
                await db.upgrade()
            except OSError as exc:  # a timeout too: a server that accepts and never answers
                from unogas_bot.cli.checks import database_unreachable

                raise CliError(database_unreachable(settings.database_url, exc)) from None
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go()) or 0


OPERATOR_ENV = "UNOGAS_OPERATOR"
OPERATOR_MAX_LEN = 64


def add_operator_argument(parser: argparse.ArgumentParser) -> None:
    """`--operator NAME` on a command that changes or reveals an account: its audit events name who ran it."""
    parser.add_argument(
        "--operator",
        metavar="NAME",
        help=f"who is running this, for the audit trail (default: ${OPERATOR_ENV}; one of them is required)",
    )


def operator_name(args: argparse.Namespace) -> str:
    """The operator from `--operator`, else `UNOGAS_OPERATOR`; a CliError when neither names one.

    Required rather than defaulted to the login name: an audit trail that says "root" or "ubuntu" on a
    shared server answers nothing, so the support staff must say who they are."""
    raw = getattr(args, "operator", None)
    if raw is None:
        raw = os.environ.get(OPERATOR_ENV, "")
    name = " ".join(raw.split())
    if not name:
        raise CliError(
            f"this command changes or reveals an account: give --operator NAME or set {OPERATOR_ENV}"
        )
    if len(name) > OPERATOR_MAX_LEN or not name.isprintable():
        raise CliError(f"the operator name must be printable and at most {OPERATOR_MAX_LEN} characters")
    return name


ENV_FILE = ".env"
_ENV_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")


def load_env_file(path: str | Path = ENV_FILE, environ: MutableMapping[str, str] | None = None) -> int:
    """Read `NAME=value` lines from `path` (if it exists) into the environment; returns how many were set.

    The variables of the real environment win, so a `.env` holds a machine's defaults and a command line
    `DATABASE_URL=... unogas-bot ...` still overrides them. The format is the systemd EnvironmentFile's
    (deploy/unogas-bot.env.example is one): blank lines and `#` comments, an optional `export `, a value
    optionally in matching quotes; nothing is expanded. A line of another shape is a CliError naming it,
    never skipped: a silently ignored setting is the kind of surprise a `.env` must not bring."""
    environ = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or type(exc).__name__}"
        ) from None
    settings: dict[str, str] = {}  # all or nothing: a bad line leaves the environment as it was
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(stripped)
        if match is None:
            raise CliError(f"{path} line {number}: expected NAME=value")
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        settings[name] = value
    added = {name: value for name, value in settings.items() if name not in environ}
    environ.update(added)
    return len(added)
