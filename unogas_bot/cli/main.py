"""The `unogas-bot` command line (also `python -m unogas_bot`).

Every command that touches the database first brings its schema up to date, so each works on an empty
database. Exit status 0 on success; otherwise non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import DBAPIError

from unogas_bot.cli import accounts, bench, config_check, console, customers, db, events, flows, run, standin
from unogas_bot.cli.common import CliError, load_env_file
from unogas_bot.config import ConfigError, Settings
from unogas_bot.security import log_repeats, redaction
from unogas_bot.security.json_logs import JsonFormatter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unogas-bot", description="The Unogas customer-area bot.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def _version() -> str:
    """The installed distribution's version (pyproject.toml), so a bug report can name what ran; a source
    tree run without installing says so rather than guessing."""
    try:
        return importlib.metadata.version("unogas-bot")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # a reader that went away shows here, not in Python's flush at exit
        return status
    except BrokenPipeError:
        # `unogas-bot accounts list | head -1`: the rest of the output is not wanted. Point stdout at
        # /dev/null so the flush at exit does not complain, and end as a tool killed by SIGPIPE does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


# Commands whose terminal is their own output: library INFO lines would interleave with the chat (console)
# or the progress lines (bench), so they log from WARNING unless LOG_LEVEL or --verbose says otherwise.
_QUIET_COMMANDS = ("console", "bench", "standin")
# Libraries that log routine work at INFO: every Bot API request (httpx), every job run (apscheduler).
_CHATTY_LIBRARIES = ("httpx", "apscheduler")
# Alembic's two lines at every start; "Running upgrade ..." (a schema change) stays.
_ALEMBIC_ROUTINE = ("Context impl", "Will assume")


def _not_routine(record: logging.LogRecord) -> bool:
    """Below DEBUG, the libraries' routine INFO records are left out (their warnings are not)."""
    if record.levelno >= logging.WARNING:
        return True
    if record.name.partition(".")[0] in _CHATTY_LIBRARIES:
        return False
    return not (record.name.startswith("alembic") and str(record.msg).startswith(_ALEMBIC_ROUTINE))


def configure_logging(settings: Settings, args: argparse.Namespace) -> None:
    """One line per record on stderr, at --verbose (DEBUG), else LOG_LEVEL, else the command's default:
    INFO, so start-up, housekeeping and users who blocked the bot show. LOG_FORMAT=json makes each line a
    JSON object (security/json_logs.py); the redaction filters run before either format."""
    if args.verbose:
        level = logging.DEBUG
    elif settings.log_level is not None:
        level = settings.log_level
    else:
        level = logging.WARNING if args.command in _QUIET_COMMANDS else logging.INFO
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if level > logging.DEBUG:
        handler.addFilter(_not_routine)
    log_repeats.install(handler)  # a fault repeating as fast as the loop turns: one line per interval
    logging.basicConfig(level=level, handlers=[handler])
    # Every command, not only the bot: the support tools read and write customers' data too, and the
    # database driver quotes it at DEBUG.
    redaction.install()


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        load_env_file()  # ./.env, under the real environment
        if args.command == "config":  # reports every bad value itself, rather than the first one
            logging.basicConfig(level=logging.WARNING)
            return COMMANDS[("config", args.action)](None, args) or 0  # type: ignore[arg-type]
        settings = Settings.from_env()
        configure_logging(settings, args)
        handler = COMMANDS[(args.command, getattr(args, "action", None))]
        return handler(settings, args) or 0
    except (CliError, ConfigError) as exc:
        print(f"unogas-bot: {exc}", file=sys.stderr)
        return 1
    except DBAPIError as exc:
        # One line, as for every other failure: SQLAlchemy's first line names the driver's error (SQL
        # parameters are hidden); the rest is a link to its documentation.
        print(f"unogas-bot: database error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# One module per command group, each with its `add_parser` and `COMMANDS`; the order is the help's.
GROUPS = (run, console, customers, accounts, db, events, bench, standin, flows, config_check)
COMMANDS: dict[tuple[str, str | None], Callable[[Settings, argparse.Namespace], int]] = {
    key: command for group in GROUPS for key, command in group.COMMANDS.items()
}
