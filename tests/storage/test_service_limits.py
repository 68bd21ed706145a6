"""The account-protection rules as unit tests of the service layer: no bot, a fake clock, cheap bcrypt.

Each use case is called directly (unogas_bot/service/), on SQLite and PostgreSQL. The last tests fire many
attempts at once at the services themselves: the limits are counted before the checks they pay for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import bcrypt
import pytest
from sqlalchemy import event, text

from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from tests.conftest import FakeClock
from tests.kit.stores import stores
from unogas_bot.config import Limits, Settings
from unogas_bot.domain import CustomerRecord, NewAccount, keys
from unogas_bot.security.hashing import hash_cost
from unogas_bot.service import limits, login, recovery, registration, session
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import (
    AccountGone,
    AnswerAccepted,
    AnswerWrong,
    EmailAccepted,
    EmailInUse,
    IdentityMismatch,
    IdentityVerified,
    InvalidCredentials,
    LoggedIn,
    LoginLocked,
    PasswordChanged,
    RecoveryLocked,
    RecoveryQuestion,
    TooManyEmailsInUse,
    TooManyMismatches,
    VerificationLocked,
)

MARIO, GIULIA = DEMO_CUSTOMERS[0], DEMO_CUSTOMERS[1]
EMAIL, PASSWORD, ANSWER, WRONG = (
    "mario.rossi@example.it",
    "Lanterna verde 1987",
    "briciola bianca",
    "Luna piena",
)
SETTINGS = Settings(bcrypt_rounds=4, hash_workers=2, limits=Limits(hash_budget_per_user=1000))


@pytest.fixture
async def services(database: Database, clock: FakeClock) -> AsyncIterator[Services]:
    services = Services.create(SETTINGS, database, clock=clock)
    await load_demo(stores(services).registry)
    yield services
    services.hasher.close()


async def register_mario(services: Services, rounds: int = 4, email: str = EMAIL) -> int:
    def hashed(secret: str) -> str:
        return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds)).decode()

    new = NewAccount(MARIO.customer_code, email, hashed(PASSWORD), "Il mio gatto?", hashed(ANSWER), None, 1)
    outcome = await registration.register(services, new)
    return outcome.account.id  # type: ignore[union-attr]


class CheckCounter:
    """Counts the bcrypt checks against a real stored hash (not the dummy)."""

    def __init__(self, services: Services) -> None:
        self.real, self.checks = services.hasher.verify, 0
        services.hasher.verify = self  # type: ignore[method-assign]

    async def __call__(self, secret: str, hashed: str | None) -> bool:
        self.checks += hashed is not None
        return await self.real(secret, hashed)


async def events_of(services: Services, account_id: int | None = None) -> list[str]:
    if account_id is not None:
        return [e.event for e in await stores(services).accounts.recent_events(account_id, 100)]
    from sqlalchemy import select

    from storage.models import AuditEvent

    async with services.db.session() as session:
        return list((await session.execute(select(AuditEvent.event).order_by(AuditEvent.id))).scalars())


# --- login ---------------------------------------------------------------------------------------------


async def test_five_failures_lock_the_telegram_user_out_of_the_address_and_the_right_password_waits(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    counter = CheckCounter(services)
    for _ in range(4):
        assert await login.log_in(services, 7, EMAIL, WRONG) == InvalidCredentials()
    assert await login.log_in(services, 7, EMAIL, WRONG) == LoginLocked(clock() + timedelta(minutes=15))
    assert counter.checks == 5
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoginLocked)
    assert counter.checks == 5  # refused without a check
    clock.advance(minutes=16)
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoggedIn)
    assert (await stores(services).accounts.session_account(7)).id == account_id  # type: ignore[union-attr]
    events = await events_of(services, account_id)
    assert events.count("login_failed") == 6 and "login_locked" in events and events[0] == "login"


async def test_an_unknown_address_is_locked_just_the_same(services: Services, clock: FakeClock) -> None:
    for _ in range(4):
        assert await login.log_in(services, 7, "nessuno@example.it", WRONG) == InvalidCredentials()
    assert await login.log_in(services, 7, "nessuno@example.it", WRONG) == LoginLocked(
        clock() + timedelta(minutes=15)
    )
    assert isinstance(await login.log_in(services, 7, "NESSUNO@example.it", WRONG), LoginLocked)


async def test_a_success_forgets_the_failures(services: Services) -> None:
    account_id = await register_mario(services)
    for _ in range(4):
        await login.log_in(services, 7, EMAIL, WRONG)
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoggedIn)
    key = keys.pair_key(keys.account_key(account_id), 7)
    assert await stores(services).attempts.count_since(limits.LOGIN_FAILED, key, timedelta(hours=1)) == 0
    # The user's failures stay (they count across addresses); the successful attempt is not among them.
    assert (
        await stores(services).attempts.count_since(limits.LOGIN_USER_FAILED, "tg:7", timedelta(hours=1)) == 4
    )


async def test_a_telegram_user_gets_one_try_per_lock_period_once_over_the_limit(
    services: Services, clock: FakeClock
) -> None:
    await register_mario(services)
    for i in range(9):
        assert await login.log_in(services, 7, f"utente{i}@example.it", WRONG) == InvalidCredentials()
    assert isinstance(await login.log_in(services, 7, "altro@example.it", WRONG), LoginLocked)
    assert await session.user_blocked_until(services, 7) == clock() + timedelta(minutes=15)
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoginLocked)  # even the right one
    clock.advance(minutes=16)
    assert isinstance(await login.log_in(services, 7, "ancora@example.it", WRONG), LoginLocked)  # one try
    clock.advance(minutes=16)
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoggedIn)
    assert await session.user_blocked_until(services, 7) is None  # the success lifted its own block


async def test_a_login_rehashes_a_password_stored_at_another_cost(services: Services) -> None:
    account_id = await register_mario(services, rounds=5)
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoggedIn)
    stored = (await stores(services).accounts.get(account_id)).password_hash  # type: ignore[union-attr]
    assert hash_cost(stored) == 4 and bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoggedIn)


async def test_the_dummy_check_takes_the_stored_hashes_cost(services: Services) -> None:
    await register_mario(services, rounds=6)
    assert services.hasher.dummy_cost == 4  # BCRYPT_ROUNDS until the first login looks
    await login.log_in(services, 7, "nessuno@example.it", WRONG)
    assert services.hasher.dummy_cost == 6


async def test_known_and_unknown_addresses_run_the_same_statements(services: Services) -> None:
    await register_mario(services)
    await login.match_dummy_cost(services)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(services.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await login.log_in(services, 7, EMAIL, WRONG)
        known, statements[:] = list(statements), []
        await login.log_in(services, 8, "nessuno@example.it", WRONG)
        unknown = list(statements)
    finally:
        event.remove(services.db.engine.sync_engine, "before_cursor_execute", seen)
    assert known == unknown and len(known) > 5


# --- registration ----------------------------------------------------------------------------------------


def identity(tax_code: str = MARIO.tax_code, code: str = MARIO.customer_code) -> CustomerRecord:
    return CustomerRecord(code, "person", MARIO.first_name, MARIO.last_name, None, tax_code)


async def test_identity_mismatches_are_limited_per_user_and_per_customer_code(
    services: Services, clock: FakeClock
) -> None:
    for left in (4, 3, 2, 1):
        assert await registration.verify_identity(services, 7, identity(GIULIA.tax_code)) == IdentityMismatch(
            left
        )
    assert await registration.verify_identity(services, 7, identity(GIULIA.tax_code)) == VerificationLocked()
    assert await registration.verify_identity(services, 7, identity()) == VerificationLocked()  # user's hour
    # The user's hour holds for every customer code (the code's own hour allows 20, tests/storage/
    # test_strangers.py); another Telegram user goes on.
    assert await registration.verify_identity(services, 7, identity(code=GIULIA.customer_code)) == (
        VerificationLocked()
    )
    assert isinstance(
        await registration.verify_identity(services, 8, identity(GIULIA.tax_code, GIULIA.customer_code)),
        IdentityMismatch,
    )
    assert (await events_of(services)).count("registration_identity_failed") == 6
    clock.advance(minutes=61)
    assert isinstance(await registration.verify_identity(services, 7, identity()), IdentityVerified)


async def test_address_in_use_answers_are_limited_then_any_address_is_refused(services: Services) -> None:
    await register_mario(services)
    code = GIULIA.customer_code
    for left in (4, 3, 2, 1, 0):
        assert await registration.choose_email(services, 7, code, EMAIL.upper()) == EmailInUse(left)
    assert await registration.choose_email(services, 7, code, EMAIL) == TooManyEmailsInUse()
    # A free address is refused as well: the refusal says nothing about the address.
    assert await registration.choose_email(services, 7, code, "libero@example.it") == TooManyEmailsInUse()
    # Per customer: another Telegram user registering the same customer meets the same limit.
    assert await registration.choose_email(services, 8, code, "libero@example.it") == TooManyEmailsInUse()
    assert await registration.choose_email(services, 8, "UG-100236", "libero@example.it") == EmailAccepted()
    assert (await events_of(services)).count("registration_email_in_use") == 5


async def test_a_free_address_waits_for_an_in_use_answer_being_counted(services: Services) -> None:
    """A free address is answered by a read with no transaction, but in order with the units of work that
    count "in use" answers for the same customer: while one is recording the fifth, the free address
    waits, and then it is refused like any other (answered at once, it would tell "free" from "in use")."""
    await register_mario(services)
    code = GIULIA.customer_code
    for left in (4, 3, 2, 1):
        assert await registration.choose_email(services, 7, code, EMAIL) == EmailInUse(left)
    async with services.uow() as uow:
        fifth = await registration.email_in_use(uow, services, 7, code, EMAIL, check=True)
        assert fifth == EmailInUse(0)
        probe = asyncio.create_task(registration.choose_email(services, 8, code, "libero@example.it"))
        await asyncio.sleep(0.3)
        assert not probe.done()
        await uow.commit()
    assert await asyncio.wait_for(probe, 10) == TooManyEmailsInUse()


async def _queued_for(db: Database, key: str, waiting: int) -> None:
    """Return once `waiting` transactions wait for the advisory lock of `key` (PostgreSQL); on SQLite, where
    every write transaction waits for the one write lock in this process, once `waiting` tasks wait for
    that lock (`Database.write_turn`'s asyncio lock; a fixed pause could let two swap places)."""
    deadline = asyncio.get_running_loop().time() + 20
    if db.dialect != "postgresql":
        while len(getattr(db._writers[1], "_waiters", None) or ()) < waiting:  # type: ignore[index]
            assert asyncio.get_running_loop().time() < deadline, f"{waiting} waiting for the write turn"
            await asyncio.sleep(0.01)
        return
    sql = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:key, 0)"
    )
    async with db.engine.connect() as conn:
        while (await conn.execute(sql, {"key": key})).scalar_one() < waiting:
            assert asyncio.get_running_loop().time() < deadline, f"{waiting} waiting for the lock of {key}"
            await asyncio.sleep(0.01)


async def test_free_addresses_behind_used_ones_are_refused_once_the_limit_is_reached(
    services: Services,
) -> None:
    """Each probe looks and counts as one step, in turn: probes of free addresses queued behind used ones
    see the count those recorded. (Looked up apart from the counting, every free address would be accepted
    and tell the used ones apart, however many.)"""
    await register_mario(services)
    code = GIULIA.customer_code
    emails = [EMAIL] * 6 + [f"libero.{n}@example.it" for n in range(4)]
    async with services.uow() as holder:  # holds the customer's key while the probes queue up behind it
        await holder.attempts.lock(limits.customer_key(code))
        probes = []
        for n, email in enumerate(emails):
            probes.append(asyncio.create_task(registration.choose_email(services, 100 + n, code, email)))
            # Queued in this order: PostgreSQL grants a lock in request order, so each probe waits for the
            # key before the next starts (a fixed pause let two swap places on a busy machine).
            await _queued_for(services.db, limits.customer_key(code), n + 1)
    outcomes = await asyncio.wait_for(asyncio.gather(*probes), 20)
    assert outcomes[:5] == [EmailInUse(left) for left in (4, 3, 2, 1, 0)]
    assert outcomes[5:] == [TooManyEmailsInUse()] * 5


# --- recovery ----------------------------------------------------------------------------------------------


async def test_recovery_answers_lock_after_three_and_are_audited(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    found = await recovery.identify(services, 7, EMAIL, MARIO.customer_code)
    assert found == RecoveryQuestion(account_id, "Il mio gatto?")
    assert await recovery.check_answer(services, 7, account_id, "Micio") == AnswerWrong(2, "Il mio gatto?")
    assert await recovery.check_answer(services, 7, account_id, ANSWER) == AnswerAccepted()
    assert await recovery.check_answer(services, 7, account_id, "Micio") == AnswerWrong(1, "Il mio gatto?")
    assert await recovery.check_answer(services, 7, account_id, "Micio") == RecoveryLocked(
        clock() + timedelta(hours=1)
    )
    assert isinstance(await recovery.check_answer(services, 7, account_id, ANSWER), RecoveryLocked)
    assert isinstance(await recovery.identify(services, 7, EMAIL, MARIO.customer_code), RecoveryLocked)
    events = await events_of(services, account_id)
    assert events.count("recovery_failed") == 3 and events.count("recovery_answer_ok") == 1
    assert "recovery_locked" in events


async def test_recovery_identity_misses_are_limited_per_user(services: Services, clock: FakeClock) -> None:
    await register_mario(services)
    for left in (4, 3, 2, 1):
        assert await recovery.identify(services, 7, EMAIL, GIULIA.customer_code) == IdentityMismatch(left)
    assert isinstance(
        await recovery.identify(services, 7, "x@example.it", MARIO.customer_code), TooManyMismatches
    )
    assert isinstance(await recovery.identify(services, 7, EMAIL, MARIO.customer_code), TooManyMismatches)
    assert await recovery.mismatches_blocked_until(services, 7) == clock() + timedelta(hours=1)
    assert isinstance(await recovery.identify(services, 8, EMAIL, MARIO.customer_code), RecoveryQuestion)


async def test_a_new_password_lifts_the_login_lock_and_ends_sessions_at_once(
    services: Services, clock: FakeClock
) -> None:
    account_id = await register_mario(services)
    assert isinstance(await login.log_in(services, 9, EMAIL, PASSWORD), LoggedIn)
    for _ in range(5):
        await login.log_in(services, 7, EMAIL, WRONG)
    assert isinstance(await login.log_in(services, 7, EMAIL, PASSWORD), LoginLocked)
    new_hash = await services.hasher.hash("Girasoli in fila 88")
    assert await recovery.set_new_password(services, 7, account_id, new_hash) == PasswordChanged()
    assert await stores(services).accounts.session_account(9) is None
    assert (await stores(services).accounts.get(account_id)).login_locked_until is None  # type: ignore[union-attr]
    assert isinstance(await login.log_in(services, 7, EMAIL, "Girasoli in fila 88"), LoggedIn)
    assert await recovery.set_new_password(services, 7, 424242, new_hash) == AccountGone()


async def test_the_current_password_is_an_acceptable_new_one(services: Services) -> None:
    account_id = await register_mario(services)
    assert (
        type(await recovery.check_new_password(services, account_id, PASSWORD)).__name__
        == "PasswordAcceptable"
    )
    refused = await recovery.check_new_password(services, account_id, "Mario Rossi 1975")
    assert refused.reason == "password.personal"  # type: ignore[union-attr]


# --- many at once ----------------------------------------------------------------------------------------


async def test_thirty_simultaneous_logins_get_twenty_checks(services: Services) -> None:
    await register_mario(services)
    counter = CheckCounter(services)
    outcomes = await asyncio.gather(*(login.log_in(services, 100 + i, EMAIL, WRONG) for i in range(30)))
    assert counter.checks == 20
    # 10 refused unchecked; the 20 checked ones each find the strangers' window full when they fail.
    assert all(isinstance(o, LoginLocked) for o in outcomes)
    assert isinstance(await login.log_in(services, 200, EMAIL, PASSWORD), LoginLocked)
    assert counter.checks == 20


async def test_thirty_simultaneous_answers_get_ten_checks(services: Services) -> None:
    account_id = await register_mario(services)
    counter = CheckCounter(services)
    outcomes = await asyncio.gather(
        *(recovery.check_answer(services, 100 + i, account_id, f"Micio {i}") for i in range(30))
    )
    assert counter.checks == 10
    assert all(isinstance(o, RecoveryLocked) for o in outcomes)
    assert isinstance(await recovery.check_answer(services, 200, account_id, ANSWER), RecoveryLocked)


async def test_thirty_simultaneous_identity_checks_of_one_code_get_twenty(
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
    outcomes = await asyncio.gather(
        *(registration.verify_identity(services, 100 + i, identity(GIULIA.tax_code)) for i in range(30))
    )
    assert matches == 20
    assert sum(o == VerificationLocked() for o in outcomes) == 11


async def test_thirty_simultaneous_probes_get_five_in_use_answers(services: Services) -> None:
    await register_mario(services)
    outcomes = await asyncio.gather(
        *(registration.choose_email(services, 100 + i, GIULIA.customer_code, EMAIL) for i in range(30))
    )
    assert sum(isinstance(o, EmailInUse) for o in outcomes) == 5
    assert sum(o == TooManyEmailsInUse() for o in outcomes) == 25
