"""KitAccounts on SQLite and PostgreSQL: registration (races included), sessions, locks, audit."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from storage.accounts import Accounts
from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from storage.models import Account, AuditEvent, TelegramSession
from storage.registry import CustomerRegistry, IdentityCheck
from storage.unit_of_work import UnitOfWork
from tests.conftest import FakeClock
from tests.kit.stores import AttemptLog, KitAccounts
from unogas_bot.domain import (
    AccountNotFound,
    AccountView,
    CustomerAlreadyRegistered,
    CustomerRecord,
    EmailTaken,
    NewAccount,
    UnknownCustomer,
)
from unogas_bot.domain.keys import account_key, telegram_key

MARIO, GIULIA, NICOLO = DEMO_CUSTOMERS[0], DEMO_CUSTOMERS[1], DEMO_CUSTOMERS[2]
SRL = DEMO_CUSTOMERS[4]
TTL = timedelta(days=30)


def new_account(
    customer: CustomerRecord, email: str, telegram_user_id: int = 1001, **extra: object
) -> NewAccount:
    values: dict = {
        "customer_code": customer.customer_code,
        "email": email,
        "password_hash": "$2b$04$hash-of-the-password",
        "security_question": "Come si chiamava il mio primo gatto?",
        "answer_hash": "$2b$04$hash-of-the-answer",
        "phone": "+393471234567",
        "telegram_user_id": telegram_user_id,
    }
    values.update(extra)
    return NewAccount(**values)


@pytest.fixture
async def demo(registry: CustomerRegistry) -> list[CustomerRecord]:
    return await load_demo(registry)


async def count_rows(database: Database, model: type) -> int:
    async with database.session() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


# --- registration ----------------------------------------------------------------------------------------


async def test_register_returns_the_account_with_customer_data(
    accounts: KitAccounts, demo: list[CustomerRecord], clock
) -> None:
    view = await accounts.register(new_account(NICOLO, "  Nicolo.DAngelo@Example.IT ", telegram_user_id=77))
    assert isinstance(view, AccountView)
    assert view.customer_code == NICOLO.customer_code
    assert (view.kind, view.first_name, view.last_name, view.company_name) == (
        "person",
        "Nicolò",
        "D'Angelo",
        None,
    )
    assert view.tax_code == NICOLO.tax_code
    assert view.email == "nicolo.dangelo@example.it"  # stored lower-case
    assert view.phone == "+393471234567"
    assert view.security_question == "Come si chiamava il mio primo gatto?"
    assert view.password_hash == "$2b$04$hash-of-the-password"
    assert view.answer_hash == "$2b$04$hash-of-the-answer"
    assert view.registered_at == view.password_changed_at == clock()
    assert view.registered_at.tzinfo is not None
    assert view.registered_by == 77
    assert view.login_locked_until is None and view.recovery_locked_until is None
    assert await accounts.get(view.id) == view
    [entry] = await accounts.recent_events(view.id)
    assert (entry.event, entry.telegram_user_id, entry.at) == ("registered", 77, clock())


async def test_register_business_without_phone(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    view = await accounts.register(new_account(SRL, "amministrazione@ferraro.it", phone=None))
    assert (view.kind, view.company_name, view.phone) == ("business", "Idrotermica Ferraro S.r.l.", None)
    assert view.first_name is None and view.last_name is None


async def test_huge_telegram_ids_fit(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    big = 2**52 + 7  # Telegram ids exceed 32 bits
    view = await accounts.register(new_account(MARIO, "mario@example.it", telegram_user_id=big))
    await accounts.link_session(view.id, big, TTL)
    assert view.registered_by == big
    assert (await accounts.session_account(big)) == view


async def test_email_taken_whatever_the_case(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord]
) -> None:
    await accounts.register(new_account(MARIO, "mario.rossi@example.it"))
    with pytest.raises(EmailTaken):
        await accounts.register(new_account(GIULIA, "Mario.Rossi@EXAMPLE.it"))
    assert await count_rows(database, Account) == 1
    assert await accounts.get_by_email("MARIO.ROSSI@example.IT") is not None
    assert await accounts.get_by_email("giulia@example.it") is None
    assert await accounts.get_by_customer_code(GIULIA.customer_code) is None


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
async def test_the_email_probe_counts_both_keys_in_the_window_and_finds_the_address(
    accounts: KitAccounts,
    attempt_log: AttemptLog,
    database: Database,
    demo: list[CustomerRecord],
    clock: FakeClock,
    locked: bool,
) -> None:
    """The same answers with the keys locked first (on PostgreSQL in the look-up's statement)."""
    await accounts.register(new_account(MARIO, "mario.rossi@example.it"))
    await attempt_log.record("email_in_use", "tg:1")
    clock.advance(minutes=30)
    for key in ("tg:1", "customer:x", "customer:x", "customer:x"):
        await attempt_log.record("email_in_use", key)
    await attempt_log.record("verify", "customer:x")  # another kind
    await attempt_log.record("email_in_use", "tg:2")  # another key
    clock.advance(minutes=40)  # the first one left the hour

    async def probe(email: str) -> tuple[int, bool]:
        async with UnitOfWork(database, clock) as uow:
            return await uow.accounts.email_probe(
                email,
                kind="email_in_use",
                first="tg:1",
                second="customer:x",
                window=timedelta(hours=1),
                locked=locked,
            )

    assert await probe("MARIO.Rossi@example.it ") == (3, True)
    assert await probe("giulia@example.it") == (3, False)
    clock.advance(minutes=30)
    assert await probe("giulia@example.it") == (0, False)


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
async def test_the_identity_check_reads_counts_entry_and_profile_in_one_look_up(
    accounts: KitAccounts,
    attempt_log: AttemptLog,
    database: Database,
    demo: list[CustomerRecord],
    clock: FakeClock,
    locked: bool,
) -> None:
    """The same answers with the keys locked first (on PostgreSQL in the look-up's statement)."""
    await accounts.register(new_account(MARIO, "mario.rossi@example.it"))
    for key in ("tg:1", "customer:x", "tg:1", "customer?:y", "customer?:y", "customer?:y"):
        await attempt_log.record("verify", key)
    await attempt_log.record("email_in_use", "tg:1")  # another kind

    async def check(code: str) -> IdentityCheck:
        async with UnitOfWork(database, clock) as uow:
            since = clock() - timedelta(hours=1)
            return await uow.registry.check_identity(
                code,
                kind="verify",
                first="tg:1",
                second="customer:x",
                unknown="customer?:y",
                since=since,
                locked=locked,
            )

    mario = await check("ug 100 234")  # any spelling of the code
    assert (mario.failures, mario.has_account) == (2, True)
    assert mario.match(MARIO) == MARIO
    assert mario.match(dataclasses.replace(MARIO, tax_code=GIULIA.tax_code)) is None
    assert mario.match(dataclasses.replace(MARIO, first_name="Luigi")) is None
    giulia = await check(GIULIA.customer_code)
    assert (giulia.failures, giulia.has_account, giulia.match(GIULIA)) == (2, False, GIULIA)
    nobody = await check("UG-999999")  # no such customer: still the counts, under the unknown code's key
    assert (nobody.failures, nobody.has_account, nobody.entry) == (3, False, None)
    assert (nobody.by_second, mario.by_second) == (3, 1)
    assert nobody.match(dataclasses.replace(MARIO, customer_code="UG-999999")) is None
    clock.advance(hours=2)
    assert (await check(MARIO.customer_code)).failures == 0


async def test_second_account_for_a_customer(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord]
) -> None:
    await accounts.register(new_account(MARIO, "mario.rossi@example.it"))
    with pytest.raises(CustomerAlreadyRegistered):
        await accounts.register(new_account(MARIO, "altro@example.it", telegram_user_id=2002))
    assert await count_rows(database, Account) == 1
    assert await accounts.get_by_customer_code(MARIO.customer_code) is not None
    assert await accounts.get_by_customer_code("ug-100234") is not None
    assert await accounts.get_by_email("altro@example.it") is None


async def test_unknown_customer(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord]
) -> None:
    stranger = CustomerRecord("UG-999999", "person", "Ugo", "Neri", None, "RSSMRA75C12H501H")
    with pytest.raises(UnknownCustomer):
        await accounts.register(new_account(stranger, "ugo@example.it"))
    assert await count_rows(database, Account) == 0
    assert await count_rows(database, AuditEvent) == 0


async def test_nothing_half_saved_when_the_audit_insert_fails(
    accounts: KitAccounts,
    database: Database,
    demo: list[CustomerRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(Accounts, "add_event", broken)
    with pytest.raises(RuntimeError, match="audit"):
        await accounts.register(new_account(MARIO, "mario@example.it"))
    monkeypatch.undo()
    assert await count_rows(database, Account) == 0
    assert await accounts.get_by_email("mario@example.it") is None
    assert await accounts.get_by_customer_code(MARIO.customer_code) is None
    # And the customer can still register afterwards.
    assert (await accounts.register(new_account(MARIO, "mario@example.it"))).email == "mario@example.it"


# --- races: the database's unique constraints decide -----------------------------------------------------


async def test_twenty_concurrent_registrations_for_one_customer(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord]
) -> None:
    attempts = [new_account(MARIO, f"user{n}@example.it", telegram_user_id=n) for n in range(20)]
    results = await asyncio.gather(*(accounts.register(a) for a in attempts), return_exceptions=True)
    winners = [r for r in results if isinstance(r, AccountView)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert len(losers) == 19 and all(isinstance(e, CustomerAlreadyRegistered) for e in losers), losers
    assert await count_rows(database, Account) == 1
    assert await count_rows(database, AuditEvent) == 1  # only the winner's "registered" event
    assert await accounts.get_by_customer_code(MARIO.customer_code) == winners[0]


async def test_twenty_concurrent_registrations_with_one_email(
    accounts: KitAccounts, registry: CustomerRegistry, database: Database
) -> None:
    customers = [
        CustomerRecord(f"UG-{300000 + n}", "person", "Mario", "Rossi", None, "RSSMRA75C12H501H")
        for n in range(20)
    ]
    await registry.upsert_many(customers)
    attempts = [
        new_account(customer, "Shared@Example.it" if n % 2 else "shared@example.IT", telegram_user_id=n)
        for n, customer in enumerate(customers)
    ]
    results = await asyncio.gather(*(accounts.register(a) for a in attempts), return_exceptions=True)
    winners = [r for r in results if isinstance(r, AccountView)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert len(losers) == 19 and all(isinstance(e, EmailTaken) for e in losers), losers
    assert await count_rows(database, Account) == 1
    assert await count_rows(database, AuditEvent) == 1


# --- look-ups --------------------------------------------------------------------------------------------


async def test_lookups(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    mario = await accounts.register(new_account(MARIO, "mario.rossi@example.it"))
    giulia = await accounts.register(new_account(GIULIA, "giulia@example.it", telegram_user_id=2))
    assert await accounts.get_by_email("MARIO.ROSSI@example.it") == mario
    assert await accounts.get_by_email("nobody@example.it") is None
    assert await accounts.get_by_customer_code("UG-100235") == giulia
    assert await accounts.get_by_customer_code(NICOLO.customer_code) is None  # customer without account
    assert await accounts.find(" Giulia@Example.IT ") == giulia
    assert await accounts.find("ug-100234") == mario
    assert await accounts.find("UG-000000") is None
    assert await accounts.get(999_999) is None
    assert await accounts.count() == 2


# --- sessions --------------------------------------------------------------------------------------------


async def test_session_lifecycle_with_expiry(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord], clock
) -> None:
    view = await accounts.register(new_account(MARIO, "mario@example.it"))
    assert await accounts.session_account(555) is None
    await accounts.link_session(view.id, 555, timedelta(hours=1))
    assert await accounts.session_account(555) == view
    clock.advance(minutes=59)
    assert await accounts.session_account(555) == view
    clock.advance(minutes=1)  # expires_at is exclusive
    assert await accounts.session_account(555) is None
    assert await count_rows(database, TelegramSession) == 0  # the expired session was deleted


async def test_link_session_replaces_the_users_previous_link(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord], clock
) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    giulia = await accounts.register(new_account(GIULIA, "giulia@example.it"))
    await accounts.link_session(mario.id, 555, TTL)
    clock.advance(days=29)
    await accounts.link_session(giulia.id, 555, TTL)  # same Telegram user, other account
    clock.advance(days=2)  # the first link would have expired by now; the new one has not
    assert await accounts.session_account(555) == giulia
    assert await count_rows(database, TelegramSession) == 1
    await accounts.link_session(giulia.id, 555, TTL)  # logging in again to the same account is fine
    assert await count_rows(database, TelegramSession) == 1


async def test_link_session_to_missing_account(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    with pytest.raises(AccountNotFound):
        await accounts.link_session(424242, 555, TTL)


async def test_end_session_and_end_all_sessions(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    giulia = await accounts.register(new_account(GIULIA, "giulia@example.it"))
    for user in (1, 2, 3):
        await accounts.link_session(mario.id, user, TTL)
    await accounts.link_session(giulia.id, 4, TTL)
    assert await accounts.end_session(1) is True
    assert await accounts.end_session(1) is False
    assert await accounts.session_account(1) is None
    assert await accounts.end_all_sessions(mario.id) == 2
    assert await accounts.session_account(2) is None and await accounts.session_account(3) is None
    assert await accounts.session_account(4) == giulia  # other accounts untouched
    assert await accounts.end_all_sessions(mario.id) == 0


async def test_prune_sessions(accounts: KitAccounts, demo: list[CustomerRecord], clock) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    await accounts.link_session(mario.id, 1, timedelta(hours=1))
    await accounts.link_session(mario.id, 2, timedelta(hours=3))
    clock.advance(hours=2)
    assert await accounts.prune_sessions() == 1
    assert await accounts.session_account(2) == mario


# --- password, locks -------------------------------------------------------------------------------------


async def test_change_password_ends_sessions(
    accounts: KitAccounts, demo: list[CustomerRecord], clock
) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    await accounts.link_session(mario.id, 1, TTL)
    await accounts.link_session(mario.id, 2, TTL)
    changed_at = clock.advance(days=3)
    await accounts.change_password(mario.id, "$2b$04$new-hash")
    after = await accounts.get(mario.id)
    assert after is not None
    assert after.password_hash == "$2b$04$new-hash"
    assert after.password_changed_at == changed_at
    assert after.registered_at == mario.registered_at
    assert await accounts.session_account(1) is None and await accounts.session_account(2) is None
    assert (await accounts.recent_events(mario.id))[0].event == "password_recovered"
    with pytest.raises(AccountNotFound):
        await accounts.change_password(424242, "$2b$04$x")


async def test_locks_and_unlock(
    accounts: KitAccounts, attempt_log: AttemptLog, demo: list[CustomerRecord], clock
) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    giulia = await accounts.register(new_account(GIULIA, "giulia@example.it"))
    until = clock() + timedelta(minutes=15)
    await accounts.set_login_lock(mario.id, until)
    await accounts.set_recovery_lock(mario.id, until + timedelta(hours=1))
    locked = await accounts.get(mario.id)
    assert locked is not None
    assert locked.login_locked_until == until
    assert locked.recovery_locked_until == until + timedelta(hours=1)
    assert locked.login_locked_until.tzinfo is not None

    for kind in ("login_account", "recovery"):
        await attempt_log.record(kind, account_key(mario.id))
        await attempt_log.record(kind, account_key(giulia.id))
    await attempt_log.record("login_user", telegram_key(1001))

    await accounts.unlock(mario.id)
    unlocked = await accounts.get(mario.id)
    assert unlocked is not None
    assert unlocked.login_locked_until is None and unlocked.recovery_locked_until is None
    window = timedelta(hours=1)
    assert await attempt_log.count_since("login_account", account_key(mario.id), window) == 0
    assert await attempt_log.count_since("recovery", account_key(mario.id), window) == 0
    assert await attempt_log.count_since("login_account", account_key(giulia.id), window) == 1
    assert await attempt_log.count_since("login_user", telegram_key(1001), window) == 1
    assert (await accounts.recent_events(mario.id))[0].event == "unlocked"

    await accounts.set_login_lock(mario.id, until)
    await accounts.set_login_lock(mario.id, None)
    assert (await accounts.get(mario.id)).login_locked_until is None  # type: ignore[union-attr]
    with pytest.raises(AccountNotFound):
        await accounts.set_recovery_lock(424242, until)
    with pytest.raises(AccountNotFound):
        await accounts.unlock(424242)


async def test_naive_datetimes_are_refused(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    with pytest.raises(StatementError, match="naive datetime"):
        await accounts.set_login_lock(mario.id, datetime(2030, 1, 1))


async def test_other_time_zones_are_stored_as_utc(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    rome = datetime(2030, 7, 1, 14, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Rome"))
    await accounts.set_login_lock(mario.id, rome)
    stored = (await accounts.get(mario.id)).login_locked_until  # type: ignore[union-attr]
    assert stored == rome and stored.utcoffset() == timedelta(0)  # type: ignore[union-attr]


# --- administration --------------------------------------------------------------------------------------


async def test_list_accounts_newest_first(accounts: KitAccounts, demo: list[CustomerRecord], clock) -> None:
    views = []
    for n, customer in enumerate(demo):
        views.append(await accounts.register(new_account(customer, f"c{n}@example.it", telegram_user_id=n)))
        clock.advance(minutes=1)
    newest_first = list(reversed(views))
    assert await accounts.list_accounts(1) == newest_first
    assert await accounts.list_accounts(1, page_size=4) == newest_first[:4]
    assert await accounts.list_accounts(2, page_size=4) == newest_first[4:]
    assert await accounts.list_accounts(3, page_size=4) == []
    with pytest.raises(ValueError):
        await accounts.list_accounts(0)


async def test_sessions_cascade_when_an_account_row_goes(
    accounts: KitAccounts, database: Database, demo: list[CustomerRecord]
) -> None:
    """The foreign key itself cascades (SQLite needs PRAGMA foreign_keys=ON for that)."""
    from sqlalchemy import delete

    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    await accounts.link_session(mario.id, 1, TTL)
    async with database.transaction() as session:
        await session.execute(delete(Account).where(Account.id == mario.id))
    assert await count_rows(database, TelegramSession) == 0


# --- audit -----------------------------------------------------------------------------------------------


async def test_record_and_read_events(accounts: KitAccounts, demo: list[CustomerRecord], clock) -> None:
    mario = await accounts.register(new_account(MARIO, "mario@example.it"))
    for n in range(25):
        clock.advance(seconds=1)
        await accounts.record_event("login", account_id=mario.id, telegram_user_id=n, detail=f"#{n}")
    await accounts.record_event("verify_failed", telegram_user_id=9, customer_code="UG-100235")  # no account
    events = await accounts.recent_events(mario.id)
    assert len(events) == 20
    assert [e.detail for e in events[:3]] == ["#24", "#23", "#22"]
    assert events[0].at == clock() and events[0].telegram_user_id == 24
    assert len(await accounts.recent_events(mario.id, limit=100)) == 26
    assert (await accounts.recent_events(mario.id, limit=100))[-1].event == "registered"


async def test_event_detail_is_cut_to_size(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    await accounts.record_event("note", account_id=1, detail="x" * 2000)
    [entry] = await accounts.recent_events(1)
    assert entry.detail == "x" * 500


async def test_views_are_frozen(accounts: KitAccounts, demo: list[CustomerRecord]) -> None:
    view = await accounts.register(new_account(MARIO, "mario@example.it"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.email = "other@example.it"  # type: ignore[misc]
