"""The `unogas-bot` command line (also `python -m unogas_bot`).

Every command that touches the database first brings its schema up to date, so each works on an empty
database. Exit status 0 on success; otherwise non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from sqlalchemy.exc import DBAPIError, OperationalError

from storage.customer_csv import ImportRejected, import_file
from storage.db import Database
from storage.demo import load_demo
from storage.registry import CustomerRecord, CustomerRegistry
from unogas_bot.config import ConfigError, Settings, async_database_url


class CliError(Exception):
    """A failure to report as one line on stderr."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unogas-bot", description="The Unogas customer-area bot.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run the bot on Telegram (long polling, or a webhook); needs TELEGRAM_BOT_TOKEN"
    )
    run.add_argument(
        "--webhook-url",
        metavar="URL",
        help="receive updates by webhook at this public HTTPS URL (secret: TELEGRAM_WEBHOOK_SECRET)",
    )
    run.add_argument("--listen", default="127.0.0.1", help="webhook server address (default 127.0.0.1)")
    run.add_argument("--port", type=_port, default=8443, help="webhook server port (default 8443)")
    run.add_argument("--url-path", help="path the webhook server answers on (default: the URL's path)")

    console = sub.add_parser("console", help="the same conversations in the terminal, offline")
    console.add_argument(
        "--user-id",
        type=int,
        help="the Telegram user id to play (default: one Telegram never assigns, so no real customer's)",
    )
    console.add_argument("--language", default="it", help="the user's Telegram language code (it, en)")

    customers = sub.add_parser("customers", help="the customer registry (the data printed on the bills)")
    csub = customers.add_subparsers(dest="action", required=True)
    imp = csub.add_parser("import", help="load customer records from a CSV file")
    imp.add_argument("file", help="UTF-8 CSV: customer_code,kind,first_name,last_name,company_name,tax_code")
    csub.add_parser("demo", help="load a few demo customers and print them")

    from unogas_bot import cli_accounts  # imported here: it imports this module

    cli_accounts.add_parser(sub)

    db = sub.add_parser("db", help="database schema")
    dsub = db.add_subparsers(dest="action", required=True)
    dsub.add_parser("upgrade", help="bring the schema up to date")

    bench = sub.add_parser("bench", help="benchmark: throughput, latency and memory against their limits")
    bench.add_argument("--quick", action="store_true", help="smaller sizes: a run of under a minute")
    bench.add_argument("--database", metavar="URL", help="a PostgreSQL URL (default: SQLite temp files)")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    bench.add_argument("--customers", type=int, metavar="N", help="customers in the registration load")
    bench.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    return parser


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
_QUIET_COMMANDS = ("console", "bench")
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
    INFO, so start-up, housekeeping and users who blocked the bot show."""
    if args.verbose:
        level = logging.DEBUG
    elif settings.log_level is not None:
        level = settings.log_level
    else:
        level = logging.WARNING if args.command in _QUIET_COMMANDS else logging.INFO
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if level > logging.DEBUG:
        handler.addFilter(_not_routine)
    logging.basicConfig(level=level, handlers=[handler])


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
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


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[int | None]]) -> int:
    async def go() -> int | None:
        db = Database(settings.database_url)
        try:
            try:
                await db.upgrade()
            except OSError as exc:
                raise CliError(f"cannot reach the database: {exc}") from None
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go()) or 0


def _describe(record: CustomerRecord) -> str:
    who = record.company_name if record.kind == "business" else f"{record.first_name} {record.last_name}"
    kind = "azienda" if record.kind == "business" else "persona"
    return f"  {record.customer_code:<12} {kind:<8} {who:<28} {record.tax_code}"


def _readable(path: str) -> None:
    """Refuse, in one line, a file that cannot be read, before the database is touched."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{path} is a directory: name the CSV file inside it") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None


def cmd_customers_import(settings: Settings, args: argparse.Namespace) -> int:
    _readable(args.file)

    async def work(db: Database) -> int:
        try:
            result = await import_file(args.file, CustomerRegistry(db))
        except ImportRejected as rejected:
            for line, reason in rejected.errors:
                print(f"line {line}: {reason}", file=sys.stderr)
            unlisted = rejected.total - len(rejected.errors)
            if unlisted:
                print(f"... and {unlisted} more", file=sys.stderr)
            raise CliError(f"{rejected.total} error(s) in {args.file}: nothing imported") from None
        print(f"{result.rows} rows read: {result.inserted} customers added, {result.updated} updated")
        return 0

    return _with_database(settings, work)


def cmd_customers_demo(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        records = await load_demo(CustomerRegistry(db))
        print("Demo customers (type these in the conversation):")
        for record in records:
            print(_describe(record))
        return 0

    return _with_database(settings, work)


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        print("database schema is up to date")
        return 0

    return _with_database(settings, work)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("ports are 1-65535")
    return value


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from unogas_bot.runner import StartupError, Webhook, run

    if not settings.telegram_token:
        raise CliError("TELEGRAM_BOT_TOKEN is not set (without it, try: unogas-bot console)")
    webhook = None
    if args.webhook_url:
        url = urlsplit(args.webhook_url)
        # Telegram only posts to HTTPS; a self-hosted Bot API server (TELEGRAM_API_BASE_URL) also to HTTP.
        schemes = ("https", "http") if settings.telegram_api_base_url else ("https",)
        if url.scheme not in schemes or not url.hostname:
            raise CliError(f"--webhook-url must be an https:// URL, not {args.webhook_url!r}")
        if not settings.telegram_webhook_secret:
            # Without it anybody who finds the address could post updates in any customer's name.
            raise CliError("TELEGRAM_WEBHOOK_SECRET is not set: a webhook needs it")
        webhook = Webhook(
            args.webhook_url,
            settings.telegram_webhook_secret,
            listen=args.listen,
            port=args.port,
            url_path=args.url_path,
        )
    try:
        return run(settings, webhook)
    except StartupError as exc:  # Telegram unreachable after the retries, or the token refused
        raise CliError(f"cannot start: {exc}") from None
    except (OSError, OperationalError) as exc:  # the database unreachable, the webhook port taken, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"cannot start: {reason}") from None


def cmd_console(settings: Settings, args: argparse.Namespace) -> int:
    from unogas_bot.console import run_console

    player = {} if args.user_id is None else {"user_id": args.user_id}

    async def work(db: Database) -> int:
        return await run_console(settings, language=args.language, db=db, **player)

    return _with_database(settings, work)  # an unreachable database: one line, as for every command


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    """`bench`: see unogas_bot/bench.py (bcrypt cost 12 whatever BCRYPT_ROUNDS says)."""
    from unogas_bot import bench

    if args.customers is not None and args.customers < 1:
        raise CliError("--customers must be at least 1")
    database = async_database_url(args.database, "--database") if args.database else None
    return bench.main(args.quick, database, args.json, args.customers, check=args.check)


def cmd_accounts(settings: Settings, args: argparse.Namespace) -> int:
    """`accounts list|show|unlock|delete`: see unogas_bot/cli_accounts.py."""
    from unogas_bot import cli_accounts

    return cli_accounts.COMMANDS[(args.command, args.action)](settings, args)


COMMANDS: dict[tuple[str, str | None], Callable[[Settings, argparse.Namespace], int]] = {
    ("run", None): cmd_run,
    ("console", None): cmd_console,
    ("customers", "import"): cmd_customers_import,
    ("customers", "demo"): cmd_customers_demo,
    ("db", "upgrade"): cmd_db_upgrade,
    ("bench", None): cmd_bench,
    ("accounts", "list"): cmd_accounts,
    ("accounts", "show"): cmd_accounts,
    ("accounts", "unlock"): cmd_accounts,
    ("accounts", "delete"): cmd_accounts,
}
