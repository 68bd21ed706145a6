"""The bot's one clock: now, timezone-aware, in UTC. Everything that keeps time takes a clock like this as a
parameter (tests pass a fake one); this is the default."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
