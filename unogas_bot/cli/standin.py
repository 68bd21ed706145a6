"""`unogas-bot standin serve`: the offline Bot API over HTTP (unogas_bot/offline/http.py).

For tests that run real `unogas-bot run` processes (failover, health, logs) and for support staff who want
to watch the bot work without Telegram: point `TELEGRAM_API_BASE_URL` at the printed address and play users
with `curl` (the routes are in offline/http.py's docstring).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from unogas_bot.cli.common import CliError
from unogas_bot.cli.run import _port
from unogas_bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    standin = sub.add_parser("standin", help="the offline Bot API stand-in, served over HTTP")
    ssub = standin.add_subparsers(dest="action", required=True)
    serve = ssub.add_parser(
        "serve",
        help="serve the Bot API stand-in on a local port (only TELEGRAM_BOT_TOKEN is accepted, when set)",
    )
    serve.add_argument("--port", type=_any_port, required=True, help="port to listen on (0: any free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def _any_port(text: str) -> int:
    return 0 if text.strip() == "0" else _port(text)


def cmd_standin_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until Ctrl+C or SIGTERM. The first line on stdout is the TELEGRAM_API_BASE_URL to use, so a
    script (or a test) that asked for port 0 learns the port."""
    from unogas_bot.offline import http

    async def serve() -> None:
        standin = http.StandInHttp(token=settings.telegram_token)
        try:
            server, port = http.start(standin, args.host, args.port)
        except OSError as exc:
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"TELEGRAM_API_BASE_URL=http://{host}:{port}/bot", flush=True)
        print(
            f"stand-in Bot API of bot {standin.api.bot_user['id']} on {args.host}:{port}; users at "
            f"http://{host}:{port}/standin/users/<id>/send; Ctrl+C stops it",
            file=sys.stderr,
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await http.stop(server, standin)

    asyncio.run(serve())
    return 0


COMMANDS = {("standin", "serve"): cmd_standin_serve}
