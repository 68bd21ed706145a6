"""What every command shares: the one-line failure, and a database brought up to date first."""

from __future__ import annotations

import asyncio
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
