"""Housekeeping's use cases: what the bot's periodic jobs (bot/housekeeping.py) ask of storage, each in
one unit of work."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unogas_bot.service.context import Services


async def tidy(services: Services, attempts_older_than: timedelta) -> tuple[int, int]:
    """Delete the attempts older than `attempts_older_than` and the expired sessions; how many of each."""
    async with services.uow() as uow:
        attempts = await uow.attempts.prune(attempts_older_than)
        sessions = await uow.accounts.prune_sessions()
        await uow.commit()
    return attempts, sessions


async def prune_audit(services: Services) -> int:
    """Delete the audit events older than the retention period (`AUDIT_RETENTION_DAYS`); how many."""
    async with services.uow() as uow:
        pruned = await uow.profiles.prune_audit(services.settings.audit_retention)
        await uow.commit()
    return pruned
