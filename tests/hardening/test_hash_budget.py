"""bcrypt work per Telegram user is budgeted: the 7th hash in a minute waits, and nothing is lost."""

from __future__ import annotations

import copy
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import FakeClock, make_test_database
from tests.kit.botkit import (
    ANSWER,
    MARIO,
    PASSWORD,
    QUESTION,
    TEST_SETTINGS,
    answer_all,
    register_person,
    running_bot,
)
from tests.kit.hardkit import ErrorSpy, Expected, check_accounts
from unogas_bot.config import Settings
from unogas_bot.i18n import texts
from unogas_bot.offline import SimUser
from unogas_bot.security.hash_budget import HashBudget, HashBudgetExceeded


def test_sliding_window_per_user() -> None:
    clock = FakeClock()
    budget = HashBudget(3, timedelta(minutes=1), clock)
    for _ in range(3):
        budget.take(1)
        clock.advance(seconds=10)
    with pytest.raises(HashBudgetExceeded) as refused:
        budget.take(1)  # at +30 s: the first hash (at 0) frees its unit at +60 s
    assert refused.value.retry_after_seconds == 30
    budget.take(2)  # another user has a budget of their own
    clock.advance(seconds=29.5)
    with pytest.raises(HashBudgetExceeded) as refused:
        budget.take(1)  # a refusal counts nothing, and the wait is rounded up to a whole second
    assert refused.value.retry_after_seconds == 1
    clock.advance(seconds=0.5)
    budget.take(1)  # exactly a window after the first
    with pytest.raises(HashBudgetExceeded):
        budget.take(1)


def test_memory_holds_only_users_inside_the_window() -> None:
    clock = FakeClock()
    budget = HashBudget(6, timedelta(minutes=1), clock)
    for user in range(1000):
        budget.take(user)
    assert budget.tracked_users() == 1000
    clock.advance(seconds=30)
    budget.take(5)  # user 5 moves to the end: the oldest are still at the front
    clock.advance(seconds=31)
    budget.take(2000)
    assert budget.tracked_users() == 2, "users whose hashes left the window are forgotten"


def test_a_budget_needs_a_positive_limit_and_window() -> None:
    with pytest.raises(ValueError):
        HashBudget(0)
    with pytest.raises(ValueError):
        HashBudget(6, timedelta(0))


async def test_seventh_hash_in_a_minute_waits_and_the_conversation_goes_on(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The issue's attack, [password, password, /indietro] over and over: six hashes, then the seventh
    confirmation is refused with the wait; the stored draft does not change; after the wait the same
    confirmation goes through and the registration is saved."""
    limit = Settings().limits.hash_budget_per_user
    assert limit == 6
    # The suite's settings lift the budget for tests of other limits; this one runs with the real one.
    settings = dataclasses.replace(
        TEST_SETTINGS, limits=dataclasses.replace(TEST_SETTINGS.limits, hash_budget_per_user=limit)
    )
    async with make_test_database("sqlite", tmp_path) as db, running_bot(db, clock, settings) as bot:
        spy = ErrorSpy(bot.app)
        hashes: list[str] = []
        real_hash = bot.services.hasher.hash

        async def counting_hash(secret: str) -> str:
            hashes.append(secret)
            return await real_hash(secret)

        bot.services.hasher.hash = counting_hash  # type: ignore[method-assign]
        user = bot.user(1001)
        await user.send("/registrati")
        await user.send("continua")
        await user.send(MARIO["code"])
        await user.press("Persona")
        await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", "mario.rossi@example.it")
        for _ in range(limit):
            await answer_all(user, PASSWORD, PASSWORD, "/indietro")
            clock.advance(seconds=5)
        assert len(hashes) == limit

        await user.send(PASSWORD)
        stored = copy.deepcopy(bot.app.user_data[user.user_id]["registration"])
        events = await user.send(PASSWORD)
        assert SimUser.texts(events) == [texts.t("it", "hash_wait", seconds=30)]
        assert bot.api.is_deleted(user.chat_id, user.last_message_id), "the secret is deleted all the same"
        assert len(hashes) == limit, "no bcrypt work beyond the budget"
        assert bot.app.user_data[user.user_id]["registration"] == stored, "the draft is exactly as it was"

        clock.advance(seconds=30)
        events = await user.send(PASSWORD)  # sent again after the wait: the confirmation goes through
        assert "domanda di sicurezza" in SimUser.texts(events)[-1].lower()
        clock.advance(seconds=5)  # the window is sliding: the next hash's unit is free 5 s later
        await answer_all(user, QUESTION, ANSWER, ANSWER)
        events = await user.press("Salva")
        assert "correttamente salvate" in SimUser.texts(events)[-1]
        expected = Expected(MARIO["code"], "mario.rossi@example.it", PASSWORD, ANSWER, user.user_id)
        await check_accounts(bot.services, {MARIO["code"]: expected})
        assert not spy.errors


async def test_a_login_beyond_the_budget_waits_at_the_password(tmp_path: Path, clock: FakeClock) -> None:
    """The service functions take from the same budget before a bcrypt check (unogas_bot/service): the
    form answers their refusal the same way, and the login works once the wait is over."""
    settings = dataclasses.replace(
        TEST_SETTINGS, limits=dataclasses.replace(TEST_SETTINGS.limits, hash_budget_per_user=2)
    )
    async with make_test_database("sqlite", tmp_path) as db, running_bot(db, clock, settings) as bot:
        spy = ErrorSpy(bot.app)
        user = bot.user(1001)
        await register_person(user)  # two hashes: the password and the answer
        await answer_all(user, "/accedi", "mario.rossi@example.it")
        events = await user.send(PASSWORD)
        assert SimUser.texts(events) == [texts.t("it", "hash_wait", seconds=60)]
        assert bot.api.is_deleted(user.chat_id, user.last_message_id)
        assert bot.app.user_data[user.user_id]["login"]["_at"] == "password", "still at the password"
        clock.advance(minutes=1)
        events = await user.send(PASSWORD)
        assert SimUser.texts(events)[-1] == texts.t("it", "login_ok", name="Mario Rossi")
        assert not spy.errors
