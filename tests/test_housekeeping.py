"""Housekeeping: the hourly job deletes outdated attempts and expired sessions, and nothing still in use."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from storage.attempts import telegram_key
from storage.models import Attempt, TelegramSession
from tests.accountkit import WRONG_PASSWORD, login, registered
from tests.botkit import Bot
from tests.conftest import FakeClock
from unogas_bot import housekeeping
from unogas_bot.service.limits import LOGIN_USER_FAILED as USER_FAILED


async def _rows(bot: Bot, model: type) -> int:
    async with bot.services.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def test_the_hourly_job_deletes_old_attempts_and_expired_sessions(bot: Bot, clock: FakeClock) -> None:
    (job,) = bot.app.job_queue.get_jobs_by_name("housekeeping")  # type: ignore[attr-defined]
    assert job.job.trigger.interval == housekeeping.INTERVAL

    mario = await registered(bot)
    await login(mario)  # a session of 30 days
    stranger = bot.user(2001)
    await login(stranger, password=WRONG_PASSWORD)  # attempts recorded now
    old_attempts = await _rows(bot, Attempt)
    assert old_attempts > 0 and await _rows(bot, TelegramSession) == 1

    clock.advance(timedelta(days=31))  # the session has expired, the attempts are a month old
    await login(stranger, password=WRONG_PASSWORD)  # fresh attempts, inside their windows
    fresh_attempts = await _rows(bot, Attempt) - old_attempts

    await job.run(bot.app)  # as the job queue runs it

    assert await _rows(bot, TelegramSession) == 0
    assert await _rows(bot, Attempt) == fresh_attempts
    assert await bot.services.attempts.count_since(USER_FAILED, telegram_key(2001), timedelta(hours=1)) == 1


def test_attempts_are_kept_longer_than_any_window_they_are_counted_in(bot: Bot) -> None:
    settings = bot.services.settings
    kept = housekeeping.attempts_kept(bot.services)
    assert kept >= timedelta(days=1)
    assert kept >= max(settings.login_user_window, settings.login_failures_window, settings.recovery_lock)
