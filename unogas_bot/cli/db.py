"""`unogas-bot db upgrade`: bring the schema up to date (every command does it first anyway)."""

from __future__ import annotations

import argparse

from storage.db import Database
from unogas_bot.cli.common import with_database
from unogas_bot.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser("db", help="database schema")
    dsub = db.add_subparsers(dest="action", required=True)
    dsub.add_parser("upgrade", help="bring the schema up to date")


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        print("database schema is up to date")
        return 0

    return with_database(settings, work)


COMMANDS = {("db", "upgrade"): cmd_db_upgrade}
