"""`unogas-bot bench`: the benchmark (unogas_bot/bench/)."""

from __future__ import annotations

import argparse

from unogas_bot.cli.common import CliError
from unogas_bot.config import Settings, async_database_url


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser("bench", help="benchmark: throughput, latency and memory against their limits")
    bench.add_argument("--quick", action="store_true", help="smaller sizes: a run of under a minute")
    bench.add_argument("--database", metavar="URL", help="a PostgreSQL URL (default: SQLite temp files)")
    bench.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    bench.add_argument("--customers", type=int, metavar="N", help="customers in the registration load")
    bench.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    """`bench`: see unogas_bot/bench/benchmark.py (bcrypt cost 12 whatever BCRYPT_ROUNDS says)."""
    from unogas_bot.bench import benchmark as bench

    if args.customers is not None and args.customers < 1:
        raise CliError("--customers must be at least 1")
    database = async_database_url(args.database, "--database") if args.database else None
    return bench.main(args.quick, database, args.json, args.customers, check=args.check)


COMMANDS = {("bench", None): cmd_bench}
