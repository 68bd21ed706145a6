"""Housekeeping while the bot runs: old attempt records and expired sessions are deleted every hour.

Attempts only matter inside the windows they are counted in (an hour at most) and an expired session is
never used again (`session_account` ignores it), so without this both tables would only grow.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import Application

from unogas_bot.services import BotContext, Services

log = logging.getLogger(__name__)

INTERVAL = timedelta(hours=1)
# Far longer than any window an attempt is counted in; kept a day for the support staff's questions.
ATTEMPTS_KEPT = timedelta(days=1)


def attempts_kept(services: Services) -> timedelta:
    """How long attempt records are kept: a day, or longer if a window was configured longer."""
    s = services.settings
    return max(ATTEMPTS_KEPT, s.login_failures_window, s.login_user_window, s.recovery_lock, s.login_lock)


async def tidy(services: Services) -> tuple[int, int]:
    """Delete outdated attempts and expired sessions; returns how many of each."""
    attempts = await services.attempts.prune(attempts_kept(services))
    sessions = await services.accounts.prune_sessions()
    log.info("housekeeping: %d old attempts and %d expired sessions deleted", attempts, sessions)
    return attempts, sessions


async def _job(context: BotContext) -> None:
    await tidy(context.services)


def schedule(app: Application) -> None:
    """Run `tidy` a minute after start, then every hour (on PTB's job queue, when the app has one)."""
    if app.job_queue is not None:
        app.job_queue.run_repeating(_job, interval=INTERVAL, first=timedelta(minutes=1), name="housekeeping")
