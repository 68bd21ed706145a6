"""`unogas-bot config check`: the environment validated without starting anything: one line per problem,
naming the setting (the values, the database reachable and at the code's schema, the metrics port free,
the Bot API URL's shape and the token accepted)."""

from __future__ import annotations

import argparse
import asyncio
import os

from unogas_bot.cli.checks import all_problems
from unogas_bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    config = sub.add_parser("config", help="the configuration: check it without starting")
    csub = config.add_subparsers(dest="action", required=True)
    check = csub.add_parser(
        "check", help="validate the environment: one line per problem, naming the setting"
    )
    check.add_argument(
        "--no-network", action="store_true", help="do not ask the Bot API whether the token is accepted"
    )


def cmd_config_check(settings: Settings | None, args: argparse.Namespace) -> int:
    problems = asyncio.run(all_problems(os.environ, network=not args.no_network))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in the configuration")
        return 1
    print(
        "the configuration is usable: "
        + (
            "database, ports and Bot API checked"
            if not args.no_network
            else "database and ports checked (not the Bot API)"
        )
    )
    return 0


COMMANDS = {("config", "check"): cmd_config_check}
