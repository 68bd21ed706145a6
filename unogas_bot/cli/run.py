"""`unogas-bot run`: the bot on Telegram, by long polling or a webhook."""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import urlsplit

from sqlalchemy.exc import OperationalError

from unogas_bot.cli.checks import database_problems, listen_problems, port_problem
from unogas_bot.cli.common import CliError
from unogas_bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("ports are 1-65535")
    return value


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from unogas_bot.bot.leader import LeadershipRefused
    from unogas_bot.bot.runner import StartupError, Webhook, run

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
    # What would make the start fail, first: each problem names its setting (a database port that is
    # wrong, a metrics port in use) instead of a driver's "[Errno 111] Connect call failed".
    problems = listen_problems(settings)
    if webhook is not None:
        problem = port_problem(args.listen, args.port, "--port", "--listen")
        problems += [problem] if problem else []
    problems += asyncio.run(database_problems(settings, migrated=False))
    if problems:
        raise CliError("cannot start: " + "; ".join(str(problem) for problem in problems))
    try:
        return run(settings, webhook)
    except (StartupError, LeadershipRefused) as exc:  # Telegram unreachable or refusing; another `run`
        raise CliError(f"cannot start: {exc}") from None
    except (OSError, OperationalError) as exc:  # the database unreachable, the webhook port taken, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"cannot start: {reason}") from None


COMMANDS = {("run", None): cmd_run}
