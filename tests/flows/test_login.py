"""/accedi, /profilo and /esci through the real Application, offline; lockouts with the fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from conversations.login import minutes_until
from storage.models import AuditEvent
from tests.conftest import FakeClock
from tests.kit.accountkit import (
    GIULIA_EMAIL,
    MARIO_EMAIL,
    WRONG_PASSWORD,
    VerifySpy,
    deleted_ids,
    login,
    registered,
    said,
)
from tests.kit.botkit import GIULIA, MARIO, PASSWORD, Bot, answer_all, last_text
from tests.kit.stores import stores
from unogas_bot.domain.keys import account_key, pair_key, telegram_key
from unogas_bot.service.limits import email_key

INVALID = "E-mail o password non valide"
WAIT = "Troppi tentativi di accesso non riusciti"
LOGGED_IN = "Accesso effettuato"
NOT_LOGGED_IN = "Non ha effettuato l'accesso"


async def events_of(bot: Bot, account_id: int) -> list[tuple[str, int | None]]:
    entries = await stores(bot.services).accounts.recent_events(account_id, limit=100)
    return [(e.event, e.telegram_user_id) for e in entries]


# --- success, profile, logout -----------------------------------------------------------------------


async def test_login_links_the_user_and_deletes_the_password(bot: Bot) -> None:
    user = await registered(bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    events = await user.send(PASSWORD)
    password_message = user.last_message_id
    assert password_message in deleted_ids(events)
    assert LOGGED_IN in said(events) and "Mario Rossi" in said(events)
    account = await stores(bot.services).accounts.session_account(user.user_id)
    assert account is not None and account.email == MARIO_EMAIL
    assert ("login", user.user_id) in await events_of(bot, account.id)
    assert "login" not in bot.app.user_data[user.user_id]  # the draft is gone


async def test_profile_shows_masked_tax_code_and_phone(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    text = last_text(await user.send("/profilo"))
    assert MARIO["code"] in text and MARIO_EMAIL in text and "Mario Rossi" in text
    assert "RSS•••••••••••1H" in text
    assert MARIO["tax"] not in text
    assert "+39 ••• ••• ••67" in text
    for shown in ("+393471234567", "3471234567", "347 123 4567", "1234567"):
        assert shown not in text


async def test_profile_and_logout_need_a_login(sqlite_bot: Bot) -> None:
    user = sqlite_bot.user(1001)
    profile = last_text(await user.send("/profilo"))
    assert NOT_LOGGED_IN in profile and "/accedi" in profile
    assert NOT_LOGGED_IN in last_text(await user.send("/esci"))
    english = sqlite_bot.user(1002, language_code="en")
    assert "You are not logged in" in last_text(await english.send("/profile"))


async def test_logout_ends_the_session(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    assert "accesso all'area clienti è stato chiuso" in last_text(await user.send("/esci"))
    assert NOT_LOGGED_IN in last_text(await user.send("/profilo"))
    assert NOT_LOGGED_IN in last_text(await user.send("/esci"))
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert ("logout", user.user_id) in await events_of(bot, account.id)


async def test_session_lasts_30_days(sqlite_bot: Bot, clock: FakeClock) -> None:
    user = await registered(sqlite_bot)
    await login(user)
    clock.advance(days=29, hours=23)
    assert MARIO["code"] in last_text(await user.send("/profilo"))
    clock.advance(hours=2)
    assert NOT_LOGGED_IN in last_text(await user.send("/profilo"))


async def test_login_when_already_logged_in_says_so(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    await login(user)
    reply = last_text(await user.send("/accedi"))
    assert "già effettuato l'accesso" in reply and MARIO_EMAIL in reply and "/esci" in reply


async def test_email_is_case_insensitive(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    assert LOGGED_IN in said(await login(user, email="Mario.Rossi@Example.IT"))


# --- failures ---------------------------------------------------------------------------------------


async def test_wrong_password_asks_the_password_again_and_back_goes_to_the_email(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    events = await login(user, password=WRONG_PASSWORD)
    assert user.last_message_id in deleted_ids(events)
    assert INVALID in said(events) and "Passo 2 di 2" in last_text(events)
    assert await stores(sqlite_bot.services).accounts.session_account(user.user_id) is None
    back = last_text(await user.send("/indietro"))
    assert "Passo 1 di 2" in back and "indirizzo e-mail" in back
    await user.send(MARIO_EMAIL)
    assert LOGGED_IN in said(await user.send(PASSWORD))


async def test_password_is_asked_again_after_a_failure(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    await login(user, password=WRONG_PASSWORD)
    assert LOGGED_IN in said(await user.send(PASSWORD))


async def test_bad_email_syntax_is_asked_again(sqlite_bot: Bot) -> None:
    user = sqlite_bot.user(1001)
    await user.send("/accedi")
    reply = said(await user.send("mario.rossi"))
    assert "Manca la chiocciola" in reply and "mario.rossi@example.it" in reply and "Passo 1 di 2" in reply


async def test_an_overlong_password_is_just_wrong(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    assert INVALID in said(await login(user, password="è" * 60))  # 120 bytes: beyond bcrypt's 72


async def test_unknown_email_looks_and_costs_like_a_wrong_password(
    sqlite_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await registered(sqlite_bot)
    spy = VerifySpy(sqlite_bot)
    monkeypatch.setattr(sqlite_bot.services.hasher, "verify", spy)
    stranger, owner = sqlite_bot.user(2001), sqlite_bot.user(2002)
    unknown = "nessuno@example.it"

    unknown_events = await login(stranger, email=unknown, password=WRONG_PASSWORD)
    wrong_events = await login(owner, email=MARIO_EMAIL, password=WRONG_PASSWORD)

    assert said(unknown_events).replace(unknown, "ADDRESS") == said(wrong_events).replace(
        MARIO_EMAIL, "ADDRESS"
    )
    assert INVALID in said(unknown_events)
    assert stranger.last_message_id in deleted_ids(unknown_events)
    assert owner.last_message_id in deleted_ids(wrong_events)
    assert spy.calls == [False, True]  # one bcrypt check each: a dummy hash, then the real one

    # Support staff see both in the audit trail, the unknown address tied to no account or customer.
    async with sqlite_bot.services.db.read() as conn:
        trail = (
            await conn.execute(
                select(
                    AuditEvent.event,
                    AuditEvent.account_id.is_(None),
                    AuditEvent.customer_code,
                    AuditEvent.telegram_user_id,
                    AuditEvent.detail,
                ).where(AuditEvent.event == "login_failed")
            )
        ).all()
    assert sorted(tuple(row) for row in trail) == [
        ("login_failed", False, MARIO["code"], 2002, "wrong password (another Telegram account)"),
        ("login_failed", True, None, 2001, "unknown e-mail"),
    ]


async def test_unknown_email_is_locked_like_an_account(
    sqlite_bot: Bot, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await registered(sqlite_bot)
    stranger, owner = sqlite_bot.user(2001), sqlite_bot.user(2002)
    for _ in range(4):
        await login(stranger, email="nessuno@example.it", password=WRONG_PASSWORD)
        await login(owner, email=MARIO_EMAIL, password=WRONG_PASSWORD)
    fifth_unknown = await login(stranger, email="nessuno@example.it", password=WRONG_PASSWORD)
    fifth_known = await login(owner, email=MARIO_EMAIL, password=WRONG_PASSWORD)
    assert said(fifth_unknown) == said(fifth_known)
    assert WAIT in said(fifth_known) and "15 min" in said(fifth_known)
    assert (
        await stores(sqlite_bot.services).attempts.count_since(
            "login_account", pair_key(email_key("nessuno@example.it"), 2001), timedelta(hours=1)
        )
        == 5
    )

    # While locked: the same remaining time, and no bcrypt work for either.
    clock.advance(minutes=5)
    spy = VerifySpy(sqlite_bot)
    monkeypatch.setattr(sqlite_bot.services.hasher, "verify", spy)
    sixth_unknown = await login(stranger, email="nessuno@example.it", password=WRONG_PASSWORD)
    sixth_known = await login(owner, email=MARIO_EMAIL, password=PASSWORD)
    assert said(sixth_unknown) == said(sixth_known)
    assert WAIT in said(sixth_known) and "10 min" in said(sixth_known)
    assert spy.calls == []


# --- brute force ------------------------------------------------------------------------------------


async def test_five_failures_lock_that_telegram_account_out_for_15_minutes(
    bot: Bot, clock: FakeClock
) -> None:
    await registered(bot)
    user = bot.user(3002)  # not the profile's own Telegram account
    for _ in range(4):
        assert INVALID in said(await login(user, password=WRONG_PASSWORD))
    fifth = said(await login(user, password=WRONG_PASSWORD))
    assert WAIT in fifth and "15 min" in fifth and INVALID not in fifth

    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.login_locked_until is None  # the profile is not locked: this Telegram account is
    assert ("login_locked", user.user_id) in await events_of(bot, account.id)

    clock.advance(minutes=5)
    refused = said(await login(user))  # even the right password, from this Telegram account
    assert WAIT in refused and "10 min" in refused
    assert await stores(bot.services).accounts.session_account(user.user_id) is None
    other = bot.user(3003)  # another Telegram account has its own five
    assert LOGGED_IN in said(await login(other))

    clock.advance(minutes=11)
    assert LOGGED_IN in said(await login(user))


async def test_failures_are_counted_in_a_15_minute_window(sqlite_bot: Bot, clock: FakeClock) -> None:
    user = await registered(sqlite_bot)
    for _ in range(4):
        await login(user, password=WRONG_PASSWORD)
    clock.advance(minutes=16)  # those four leave the window
    assert INVALID in said(await login(user, password=WRONG_PASSWORD))
    assert LOGGED_IN in said(await login(user))


async def test_a_successful_login_resets_the_account_counter(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    for _ in range(4):
        await login(user, password=WRONG_PASSWORD)
    await login(user)
    await user.send("/esci")
    for _ in range(4):
        assert INVALID in said(await login(user, password=WRONG_PASSWORD))
    account = await stores(sqlite_bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.login_locked_until is None


async def test_counters_survive_a_restart(bot: Bot, clock: FakeClock) -> None:
    from tests.kit.botkit import running_bot

    user = await registered(bot)
    for _ in range(3):
        await login(user, password=WRONG_PASSWORD)
    # Whatever the first process still had to write (the ended registration) is written, as at its stop.
    await bot.app.update_persistence()
    # A new process: new Application, new memory; same database.
    async with running_bot(bot.services.db, clock) as restarted:
        again = restarted.user(user.user_id)
        assert INVALID in said(await login(again, password=WRONG_PASSWORD))
        assert WAIT in said(await login(again, password=WRONG_PASSWORD))
        assert WAIT in said(await login(again))


async def test_a_telegram_user_is_slowed_down_across_accounts(bot: Bot, clock: FakeClock) -> None:
    await registered(bot)
    await registered(bot, 1002, GIULIA, GIULIA_EMAIL)
    guesser = bot.user(4004)
    addresses = [MARIO_EMAIL, GIULIA_EMAIL] * 2 + [f"utente{i}@example.it" for i in range(5)]
    for address in addresses:  # nine failures, no address reaches its own limit
        assert INVALID in said(await login(guesser, email=address, password=WRONG_PASSWORD))
    tenth = said(await login(guesser, email="ancora@example.it", password=WRONG_PASSWORD))
    assert WAIT in tenth and "15 min" in tenth

    # Blocked for every address, even with the right password; told at once on /accedi.
    assert WAIT in last_text(await guesser.send("/accedi"))
    assert (
        await stores(bot.services).attempts.count_since("login_user", telegram_key(4004), timedelta(hours=1))
        == 10
    )
    # Other users are not affected.
    assert LOGGED_IN in said(await login(bot.user(5005)))

    clock.advance(minutes=16)
    assert "Passo 1 di 2" in last_text(await guesser.send("/accedi"))
    # Still ten failures in the hour: one more blocks again at once (one try per lock period).
    assert WAIT in said(await answer_all(guesser, MARIO_EMAIL, WRONG_PASSWORD))
    clock.advance(minutes=16)
    assert LOGGED_IN in said(await login(guesser, email=GIULIA_EMAIL))


async def test_the_user_throttle_and_an_account_lock_say_the_same(sqlite_bot: Bot) -> None:
    await registered(sqlite_bot)
    guesser, owner = sqlite_bot.user(4004), sqlite_bot.user(4005)
    for i in range(10):
        await login(guesser, email=f"utente{i}@example.it", password=WRONG_PASSWORD)
    for _ in range(5):
        await login(owner, password=WRONG_PASSWORD)
    throttled = said(await guesser.send("/accedi"))  # told at once: nothing to type in vain
    locked = said(await login(owner, password=WRONG_PASSWORD))
    assert WAIT in throttled and throttled == locked


async def test_unlock_lifts_the_lock(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    for _ in range(5):
        await login(user, password=WRONG_PASSWORD)
    account = await stores(sqlite_bot.services).accounts.get_by_email(MARIO_EMAIL)
    await stores(sqlite_bot.services).accounts.unlock(account.id)
    assert (
        await stores(sqlite_bot.services).attempts.count_since(
            "login_account", account_key(account.id), timedelta(hours=1)
        )
        == 0
    )
    assert LOGGED_IN in said(await login(user))


# --- the conversation -------------------------------------------------------------------------------


async def test_cancel_and_timeout_forget_the_draft(sqlite_bot: Bot, clock: FakeClock) -> None:
    user = await registered(sqlite_bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    assert "annullata" in last_text(await user.send("/annulla"))
    assert "login" not in sqlite_bot.app.user_data[user.user_id]

    await answer_all(user, "/accedi", MARIO_EMAIL)
    clock.advance(minutes=16)
    assert "inattività" in last_text(await user.send(PASSWORD))
    assert "login" not in sqlite_bot.app.user_data[user.user_id]
    assert await stores(sqlite_bot.services).accounts.session_account(user.user_id) is None


async def test_login_in_english(sqlite_bot: Bot) -> None:
    await registered(sqlite_bot)
    user = sqlite_bot.user(6006, language_code="en")
    assert "e-mail address" in last_text(await user.send("/login"))
    await user.send(MARIO_EMAIL)
    assert "Incorrect e-mail or password" in said(await user.send(WRONG_PASSWORD))
    assert "You are logged in" in said(await login(user))


async def test_one_form_at_a_time(sqlite_bot: Bot, clock: FakeClock) -> None:
    user = await registered(sqlite_bot)
    await answer_all(user, "/recupera_password", MARIO_EMAIL, MARIO["code"])
    # The recovery comes after the login in the handler order: the engine still refuses to mix them.
    assert "Prima concluda l'operazione in corso" in last_text(await user.send("/accedi"))
    assert "login" not in sqlite_bot.app.user_data[user.user_id]
    assert "annullata" in last_text(await user.send("/annulla"))
    await login(user)
    # ... and the other way round.
    await answer_all(user, "/esci", "/accedi", MARIO_EMAIL)
    assert "Prima concluda l'operazione in corso" in said(await user.send("/recupera_password"))
    assert LOGGED_IN in said(await user.send(PASSWORD))


async def test_an_abandoned_form_does_not_block_another(sqlite_bot: Bot, clock: FakeClock) -> None:
    user = await registered(sqlite_bot)
    await answer_all(user, "/recupera_password", MARIO_EMAIL)
    clock.advance(minutes=16)
    assert "Passo 1 di 2" in last_text(await user.send("/accedi"))
    assert LOGGED_IN in said(await answer_all(user, MARIO_EMAIL, PASSWORD))


def test_minutes_are_rounded_up_and_never_zero() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert minutes_until(now + timedelta(minutes=14, seconds=1), now) == 15
    assert minutes_until(now + timedelta(seconds=5), now) == 1
    assert minutes_until(now, now) == 1
