"""The bot's one clock: now, timezone-aware, in UTC. Everything that keeps time takes a clock like this as a
parameter (tests pass a fake one); this is the default."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def frozen(at: datetime) -> Callable[[], datetime]:
    """A clock that always says `at` (taken as UTC when it has no zone): flow scripts replay on it, so a
    date the bot shows is the same on any day the script runs."""
    fixed = at if at.tzinfo is not None else at.replace(tzinfo=UTC)

    def clock() -> datetime:
        return fixed

    return clock
