"""AttemptLog: persistent sliding-window counters, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from storage.attempts import Attempts
from storage.db import Database
from tests.conftest import FakeClock
from tests.kit.stores import AttemptLog
from unogas_bot.domain.keys import account_key, telegram_key

HOUR = timedelta(hours=1)


async def test_count_in_a_sliding_window(attempt_log: AttemptLog, clock) -> None:
    assert await attempt_log.count_since("verify", "tg:1", HOUR) == 0
    await attempt_log.record("verify", "tg:1")
    clock.advance(minutes=20)
    await attempt_log.record("verify", "tg:1")
    clock.advance(minutes=20)
    await attempt_log.record("verify", "tg:1")
    assert await attempt_log.count_since("verify", "tg:1", HOUR) == 3
    assert await attempt_log.count_since("verify", "tg:1", timedelta(minutes=30)) == 2
    clock.advance(minutes=20)  # the first attempt is now exactly one hour old: out of the window
    assert await attempt_log.count_since("verify", "tg:1", HOUR) == 2
    clock.advance(hours=2)
    assert await attempt_log.count_since("verify", "tg:1", HOUR) == 0


async def test_kinds_and_keys_are_separate(attempt_log: AttemptLog) -> None:
    await attempt_log.record("verify", "tg:1")
    await attempt_log.record("verify", "tg:1")
    await attempt_log.record("verify", "tg:2")
    await attempt_log.record("login_user", "tg:1")
    assert await attempt_log.count_since("verify", "tg:1", HOUR) == 2
    assert await attempt_log.count_since("verify", "tg:2", HOUR) == 1
    assert await attempt_log.count_since("login_user", "tg:1", HOUR) == 1
    assert await attempt_log.count_since("recovery", "tg:1", HOUR) == 0


async def test_oldest_in_window_tells_how_long_to_wait(attempt_log: AttemptLog, clock) -> None:
    assert await attempt_log.oldest_in_window("login_account", "account:7", HOUR) is None
    first = clock()
    await attempt_log.record("login_account", "account:7")
    second = clock.advance(minutes=10)
    await attempt_log.record("login_account", "account:7")
    oldest = await attempt_log.oldest_in_window("login_account", "account:7", HOUR)
    assert oldest == first
    assert oldest is not None and oldest.tzinfo is not None
    clock.advance(minutes=55)  # the first left the window
    assert await attempt_log.oldest_in_window("login_account", "account:7", HOUR) == second
    clock.advance(hours=1)
    assert await attempt_log.oldest_in_window("login_account", "account:7", HOUR) is None


async def test_clear(attempt_log: AttemptLog) -> None:
    await attempt_log.record("login_user", "tg:1")
    await attempt_log.record("login_user", "tg:2")
    await attempt_log.record("verify", "tg:1")
    await attempt_log.clear("login_user", "tg:1")
    assert await attempt_log.count_since("login_user", "tg:1", HOUR) == 0
    assert await attempt_log.count_since("login_user", "tg:2", HOUR) == 1
    assert await attempt_log.count_since("verify", "tg:1", HOUR) == 1


async def test_prune_deletes_only_old_attempts(attempt_log: AttemptLog, clock) -> None:
    for _ in range(3):
        await attempt_log.record("verify", "tg:1")
    clock.advance(days=2)
    await attempt_log.record("verify", "tg:1")
    assert await attempt_log.prune(timedelta(days=1)) == 3
    assert await attempt_log.prune(timedelta(days=1)) == 0
    assert await attempt_log.count_since("verify", "tg:1", timedelta(days=30)) == 1


async def test_attempts_survive_a_restart(database: Database, clock) -> None:
    await AttemptLog(database, clock=clock).record("verify", "tg:1")
    await database.dispose()  # drop every connection, as a restart would
    assert await AttemptLog(database, clock=clock).count_since("verify", "tg:1", HOUR) == 1


def test_key_helpers_do_not_collide() -> None:
    assert account_key(42) == "account:42"
    assert telegram_key(42) == "tg:42"
    assert account_key(42) != telegram_key(42)


async def test_most_since_is_the_larger_of_two_keys_counts_in_the_window(
    database: Database, clock: FakeClock
) -> None:
    log = AttemptLog(database, clock=clock)
    for _ in range(3):
        await log.record("verify", "tg:1")
    await log.record("verify", "customer:x")
    await log.record("login_user", "customer:x")  # another kind: not counted
    clock.advance(minutes=30)
    await log.record("verify", "customer:x")
    async with database.session() as session:
        attempts = Attempts(session, clock)
        assert await attempts.most_since("verify", "tg:1", "customer:x", HOUR) == 3
        assert await attempts.most_since("verify", "customer:x", "tg:2", HOUR) == 2
        assert await attempts.most_since("verify", "customer:x", "tg:1", timedelta(minutes=10)) == 1
        assert await attempts.most_since("verify", "tg:3", "tg:4", HOUR) == 0
