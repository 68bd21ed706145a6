"""What every command shares: the one-line failure, a database brought up to date first, and the support
operator named in the audit trail of every command that changes or reveals an account."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable

from storage.db import Database
from unogas_bot.config import Settings


class CliError(Exception):
    """A failure to report as one line on stderr."""


def with_database(settings: Settings, work: Callable[[Database], Awaitable[int | None]]) -> int:
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
