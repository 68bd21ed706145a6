"""Limits a stranger cannot turn against the owner (issue 21), as unit tests of the service layer.

The profile's own Telegram account (the one that registered it or last logged in) has a bucket of its own;
other Telegram accounts are limited one by one and all together. Each use case is called directly, on
SQLite and PostgreSQL, with a fake clock; the last tests fire many attempts at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from storage.db import Database
from storage.demo import load_demo
from tests.conftest import FakeClock
from tests.kit.stores import stores
from tests.storage.test_service_limits import (
    ANSWER,
    EMAIL,
    GIULIA,
    MARIO,
    SETTINGS,
    WRONG,
    CheckCounter,
    events_of,
    identity,
    register_mario,
)
from unogas_bot.domain import CustomerRecord
from unogas_bot.service import login, password_check, recovery, registration
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import (
    AnswerAccepted,
    AnswerWrong,
    IdentityMismatch,
    IdentityVerified,
    InvalidCredentials,
    LoggedIn,
    LoginLocked,
    PasswordConfirmed,
    RecoveryLocked,
    RecoveryQuestion,
    VerificationLocked,
)

OWNER = 1  # register_mario registers from Telegram user 1
PASSWORD = "Lanterna verde 1987"


@pytest.fixture
async def services(database: Database, clock: FakeClock) -> AsyncIterator[Services]:
    services = Services.create(SETTINGS, database, clock=clock)
    await load_demo(stores(services).registry)
    yield services
    services.hasher.close()


async def strangers_fail_logins(services: Services, users: range, each: int = 5) -> None:
    for user in users:
        for _ in range(each):
            assert isinstance(
                await login.log_in(services, user, EMAIL, WRONG), InvalidCredentials | LoginLocked
            )


# --- login ------------------------------------------------------------------------------------------------


async def test_a_strangers_failures_lock_only_that_stranger(services: Services, clock: FakeClock) -> None:
    await register_mario(services)
    await strangers_fail_logins(services, range(7, 8))
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoginLocked)  # its own bucket is full
    assert isinstance(await login.log_in(services, OWNER, EMAIL, PASSWORD), LoggedIn)
    assert await login.log_in(services, 8, EMAIL, WRONG) == InvalidCredentials()  # another stranger: its own


async def test_all_strangers_together_get_twenty_failed_checks_an_hour_and_the_owner_none_of_theirs(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    counter = CheckCounter(services)
    await strangers_fail_logins(services, range(100, 104))  # 4 x 5 = 20 failed checks
    assert counter.checks == 20
    refused = await login.log_in(services, 104, EMAIL, PASSWORD)  # even the right one, from a stranger
    assert isinstance(refused, LoginLocked) and counter.checks == 20
    assert refused.until == clock() + timedelta(hours=1)
    account = await stores(services).accounts.get(account_id)
    assert account is not None and account.login_locked_until == clock() + timedelta(hours=1)
    assert isinstance(
        await login.log_in(services, OWNER, EMAIL, PASSWORD), LoggedIn
    )  # the owner does not wait
    # The owner's success gives the strangers nothing back: still held.
    assert isinstance(await login.log_in(services, 105, EMAIL, WRONG), LoginLocked)
    assert counter.checks == 21
    events = await events_of(services, account_id)
    assert events.count("login_strangers_held") == 1 and "login" in events
    clock.advance(minutes=61)
    assert await login.log_in(services, 106, EMAIL, WRONG) == InvalidCredentials()


async def test_an_unknown_address_holds_strangers_just_the_same(services: Services) -> None:
    for user in range(100, 104):
        for _ in range(5):
            await login.log_in(services, user, "nessuno@example.it", WRONG)
    assert isinstance(await login.log_in(services, 104, "nessuno@example.it", WRONG), LoginLocked)


async def test_the_last_login_makes_a_telegram_account_the_owner(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    assert isinstance(await login.log_in(services, 50, EMAIL, PASSWORD), LoggedIn)  # a new phone
    account = await stores(services).accounts.get(account_id)
    assert account is not None and account.owner == 50
    await strangers_fail_logins(services, range(100, 104))
    assert isinstance(await login.log_in(services, 50, EMAIL, PASSWORD), LoggedIn)
    assert isinstance(await login.log_in(services, OWNER, EMAIL, PASSWORD), LoginLocked)  # now a stranger


async def test_reauthentication_in_a_session_is_never_blocked_by_others(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    assert isinstance(await login.log_in(services, 60, EMAIL, PASSWORD), LoggedIn)
    await stores(services).accounts.link_session(account_id, OWNER, timedelta(days=1))
    await strangers_fail_logins(services, range(100, 106))  # the strangers' hour is full
    # A hijacker without a session is a stranger: it waits with the others.
    assert isinstance(
        await password_check.confirm_password(services, 107, account_id, PASSWORD, "export"), LoginLocked
    )
    for user in (60, OWNER):  # two sessions of the profile, neither the one to blame
        confirmed = await password_check.confirm_password(services, user, account_id, PASSWORD, "erase")
        assert isinstance(confirmed, PasswordConfirmed)


# --- registration -----------------------------------------------------------------------------------------


async def test_identity_checks_are_five_per_telegram_account_and_twenty_per_code(
    services: Services, clock: FakeClock
) -> None:
    wrong = identity(GIULIA.tax_code)
    for left in (4, 3, 2, 1):
        assert await registration.verify_identity(services, 7, wrong) == IdentityMismatch(left)
    assert await registration.verify_identity(services, 7, wrong) == VerificationLocked()
    assert await registration.verify_identity(services, 7, identity()) == VerificationLocked()  # its hour
    # The customer, from their own Telegram account, is not held by the stranger's five.
    assert isinstance(await registration.verify_identity(services, OWNER, identity()), IdentityVerified)
    for user in (8, 9, 10):
        for _ in range(5):
            await registration.verify_identity(services, user, wrong)
    # 20 failures on the code from everyone: the code waits its hour, for everybody.
    assert await registration.verify_identity(services, 11, identity()) == VerificationLocked()
    assert (await events_of(services)).count("registration_identity_failed") == 20
    clock.advance(minutes=61)
    assert isinstance(await registration.verify_identity(services, 11, identity()), IdentityVerified)


async def test_the_left_tries_are_the_nearer_of_the_two_limits(services: Services) -> None:
    wrong = identity(GIULIA.tax_code)
    for user in (7, 8, 9):
        for _ in range(5):
            await registration.verify_identity(services, user, wrong)
    assert await registration.verify_identity(services, 10, wrong) == IdentityMismatch(4)
    for left in (3, 2, 1):
        assert await registration.verify_identity(services, 11, wrong) == IdentityMismatch(left)
    assert await registration.verify_identity(services, 11, wrong) == VerificationLocked()


# --- recovery ---------------------------------------------------------------------------------------------


async def test_recovery_answers_three_per_telegram_account_ten_for_strangers_none_against_the_owner(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    for left in (2, 1):
        assert await recovery.check_answer(services, 7, account_id, "Micio") == AnswerWrong(
            left, "Il mio gatto?"
        )
    assert isinstance(await recovery.check_answer(services, 7, account_id, "Micio"), RecoveryLocked)
    assert isinstance(await recovery.identify(services, 7, EMAIL, MARIO.customer_code), RecoveryLocked)
    assert await recovery.check_answer(services, OWNER, account_id, ANSWER) == AnswerAccepted()
    for user in (8, 9):
        for _ in range(3):
            await recovery.check_answer(services, user, account_id, "Micio")
    counter = CheckCounter(services)
    # The 10th wrong answer of the strangers is checked, and holds them all.
    assert isinstance(await recovery.check_answer(services, 10, account_id, "Micio"), RecoveryLocked)
    assert counter.checks == 1
    # The strangers' ten are used up: another stranger waits, even with the right answer; the owner does not.
    assert isinstance(await recovery.check_answer(services, 11, account_id, ANSWER), RecoveryLocked)
    assert counter.checks == 1
    assert isinstance(await recovery.identify(services, 11, EMAIL, MARIO.customer_code), RecoveryLocked)
    found = await recovery.identify(services, OWNER, EMAIL, MARIO.customer_code)
    assert found == RecoveryQuestion(account_id, "Il mio gatto?")
    assert await recovery.check_answer(services, OWNER, account_id, ANSWER) == AnswerAccepted()
    account = await stores(services).accounts.get(account_id)
    assert account is not None and account.recovery_locked_until is not None
    assert (await events_of(services, account_id)).count("recovery_strangers_held") == 1
    clock.advance(minutes=61)
    assert await recovery.check_answer(services, 11, account_id, ANSWER) == AnswerAccepted()


# --- the owner is told ------------------------------------------------------------------------------------


async def test_the_owner_is_told_once_per_burst(services: Services, clock: FakeClock) -> None:
    from unogas_bot.service import strangers

    account_id = await register_mario(services)
    failed = await login.log_in(services, 7, EMAIL, WRONG)
    assert isinstance(failed, InvalidCredentials) and failed.stranger_on == account_id
    own = await login.log_in(services, OWNER, EMAIL, WRONG)
    assert isinstance(own, InvalidCredentials) and own.stranger_on is None  # nobody to tell of the owner
    unknown = await login.log_in(services, 7, "nessuno@example.it", WRONG)
    assert isinstance(unknown, InvalidCredentials) and unknown.stranger_on is None
    assert await strangers.alert_owner(services, account_id, "login") == OWNER
    assert await strangers.alert_owner(services, account_id, "login") is None  # the same burst
    clock.advance(minutes=30)
    assert await strangers.alert_owner(services, account_id, "recovery") is None
    clock.advance(minutes=31)
    assert await strangers.alert_owner(services, account_id, "recovery") == OWNER
    assert (await events_of(services, account_id)).count("owner_alerted") == 2


# --- many at once -----------------------------------------------------------------------------------------


async def test_thirty_strangers_at_once_get_twenty_checks_and_the_owner_gets_in(services: Services) -> None:
    await register_mario(services)
    counter = CheckCounter(services)
    outcomes = await asyncio.gather(
        *(login.log_in(services, 100 + i, EMAIL, WRONG) for i in range(30)),
        login.log_in(services, OWNER, EMAIL, PASSWORD),
    )
    assert counter.checks == 21  # 20 strangers and the owner
    assert isinstance(outcomes[-1], LoggedIn)
    assert sum(isinstance(o, LoginLocked) for o in outcomes[:-1]) >= 10


async def test_one_telegram_account_gets_five_checks_however_many_it_sends(services: Services) -> None:
    account_id = await register_mario(services)
    counter = CheckCounter(services)
    await asyncio.gather(*(login.log_in(services, 7, EMAIL, f"{WRONG} {i}") for i in range(30)))
    assert counter.checks == 5
    await asyncio.gather(*(recovery.check_answer(services, 8, account_id, f"Micio {i}") for i in range(30)))
    assert counter.checks == 8
    await asyncio.gather(
        *(password_check.confirm_password(services, 9, account_id, WRONG, "test") for i in range(30))
    )
    assert counter.checks == 13


async def test_thirty_strangers_at_once_get_ten_answer_checks(services: Services) -> None:
    account_id = await register_mario(services)
    counter = CheckCounter(services)
    outcomes = await asyncio.gather(
        *(recovery.check_answer(services, 100 + i, account_id, f"Micio {i}") for i in range(30)),
        recovery.check_answer(services, OWNER, account_id, ANSWER),
    )
    assert counter.checks == 11
    assert outcomes[-1] == AnswerAccepted()


async def test_thirty_telegram_accounts_at_once_get_twenty_identity_checks(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.registry import IdentityCheck

    matches = 0
    real = IdentityCheck.match

    def counted(self: IdentityCheck, wanted: CustomerRecord) -> object:
        nonlocal matches
        matches += 1
        return real(self, wanted)

    monkeypatch.setattr(IdentityCheck, "match", counted)
    await asyncio.gather(
        *(registration.verify_identity(services, 100 + i, identity(GIULIA.tax_code)) for i in range(30))
    )
    assert matches == 20
    matches = 0
    await asyncio.gather(
        *(registration.verify_identity(services, 7, identity(GIULIA.tax_code)) for _ in range(30))
    )
    assert matches == 0  # the code's hour is full already
    await asyncio.gather(
        *(
            registration.verify_identity(services, 8, identity(GIULIA.tax_code, GIULIA.customer_code))
            for _ in range(30)
        )
    )
    assert matches == 5  # one Telegram account: five, however many at once
