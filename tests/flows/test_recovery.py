"""/recupera_password through the real Application, offline; and no secret anywhere it could leak."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from tests.conftest import FakeClock
from tests.kit.accountkit import (
    GIULIA_EMAIL,
    MARIO_EMAIL,
    NEW_PASSWORD,
    WRONG_ANSWER,
    WRONG_PASSWORD,
    VerifySpy,
    deleted_ids,
    login,
    recover,
    registered,
    said,
    start_recovery,
)
from tests.kit.botkit import ANSWER, GIULIA, MARIO, PASSWORD, QUESTION, Bot, answer_all, last_text
from tests.kit.hardkit import secret_variants, stored_values
from tests.kit.stores import stores
from unogas_bot import rules

NO_MATCH = "Con questi dati non posso procedere"
DONE = "ora può accedere con /accedi"
LOCKED = "il recupero della password di questo profilo è sospeso"
LOGGED_IN = "Accesso effettuato"
NOT_LOGGED_IN = "Non ha effettuato l'accesso"


async def test_recovery_sets_a_new_password_and_ends_every_session(bot: Bot) -> None:
    owner = await registered(bot)
    phone, tablet = bot.user(1101), bot.user(1102)
    await login(phone)
    await login(tablet)

    shown = said(await start_recovery(owner))
    assert QUESTION in shown and "Passo 3 di 5" in shown
    events = await owner.send(ANSWER)
    assert owner.last_message_id in deleted_ids(events)
    assert "Passo 4 di 5" in last_text(events)
    await owner.send(NEW_PASSWORD)
    events = await owner.send(NEW_PASSWORD)
    assert owner.last_message_id in deleted_ids(events)
    assert DONE in last_text(events).lower()
    assert "recovery" not in bot.app.user_data[owner.user_id]

    for device in (phone, tablet):
        assert NOT_LOGGED_IN in last_text(await device.send("/profilo"))
    assert "E-mail o password non valide" in said(await login(phone, password=PASSWORD))
    assert LOGGED_IN in said(await login(tablet, password=NEW_PASSWORD))

    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    events_seen = [
        (e.event, e.telegram_user_id) for e in await stores(bot.services).accounts.recent_events(account.id)
    ]
    assert ("password_recovered", owner.user_id) in events_seen


async def test_the_answer_ignores_case_and_accents(sqlite_bot: Bot) -> None:
    owner = await registered(sqlite_bot)
    await start_recovery(owner)
    assert "Passo 4 di 5" in last_text(await owner.send("  BRICIOLA   bianca "))


@pytest.mark.parametrize(
    ("email", "code"),
    [
        (MARIO_EMAIL, GIULIA["code"]),  # a registered address with another customer's code
        ("nessuno@example.it", MARIO["code"]),  # an unknown address with a registered code
        ("nessuno@example.it", "UG-999999"),  # nothing known
        (GIULIA_EMAIL, GIULIA["code"]),  # a customer without a profile: the address is not registered
    ],
)
async def test_data_that_do_not_match_get_the_same_generic_answer(
    sqlite_bot: Bot, monkeypatch: pytest.MonkeyPatch, email: str, code: str
) -> None:
    owner = await registered(sqlite_bot)
    reference = said(await start_recovery(sqlite_bot.user(1201), MARIO_EMAIL, "UG-100299"))
    spy = VerifySpy(sqlite_bot)
    monkeypatch.setattr(sqlite_bot.services.hasher, "verify", spy)

    reply = said(await start_recovery(owner, email, code))
    assert reply == reference
    assert NO_MATCH in reply and "Tentativi rimasti: 4" in reply and "Passo 1 di 5" in reply
    assert QUESTION not in reply
    assert spy.calls == [False]  # the same dummy bcrypt check as for a match


async def test_a_match_costs_the_same_bcrypt_check(sqlite_bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await registered(sqlite_bot)
    spy = VerifySpy(sqlite_bot)
    monkeypatch.setattr(sqlite_bot.services.hasher, "verify", spy)
    assert QUESTION in said(await start_recovery(owner))
    assert spy.calls == [False]


async def test_identity_misses_are_limited_per_user(sqlite_bot: Bot, clock: FakeClock) -> None:
    owner = await registered(sqlite_bot)
    prober = sqlite_bot.user(1301)
    for left in (4, 3, 2, 1):
        assert f"Tentativi rimasti: {left}" in said(await start_recovery(prober, MARIO_EMAIL, "UG-100299"))
    fifth = said(await answer_all(prober, MARIO_EMAIL, "UG-100298"))
    assert "Troppi tentativi non riusciti" in fifth and "60 min" in fifth
    # Even the right data are refused now, for this user only.
    assert "Troppi tentativi" in last_text(await prober.send("/recupera_password"))
    assert QUESTION in said(await start_recovery(owner))
    clock.advance(minutes=61)
    assert QUESTION in said(await start_recovery(prober))


async def test_three_wrong_answers_lock_recovery_for_an_hour(bot: Bot, clock: FakeClock) -> None:
    await registered(bot)
    owner = bot.user(1402)  # a Telegram account of the customer's the profile does not know yet
    await start_recovery(owner)
    first = said(await owner.send(WRONG_ANSWER))
    assert "La risposta non è corretta. Tentativi rimasti: 2" in first and QUESTION in first
    assert "Passo 3 di 5" in first
    assert "Tentativi rimasti: 1" in said(await owner.send(WRONG_ANSWER))
    events = await owner.send(WRONG_ANSWER)
    assert owner.last_message_id in deleted_ids(events)
    assert LOCKED in last_text(events) and "60 min" in last_text(events)

    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.recovery_locked_until is None  # the profile is not locked: this Telegram account is
    seen = [e.event for e in await stores(bot.services).accounts.recent_events(account.id)]
    assert seen.count("recovery_failed") == 3 and "recovery_locked" in seen

    clock.advance(minutes=30)
    # Locked for this Telegram account: the question is not shown to it any more.
    refused = said(await start_recovery(owner))
    assert LOCKED in refused and "30 min" in refused and QUESTION not in refused
    # Another Telegram account has its own three; login is a different matter: the password still works.
    other = bot.user(1401)
    assert QUESTION in said(await start_recovery(other))
    await other.send("/annulla")
    assert LOGGED_IN in said(await login(owner))

    clock.advance(minutes=31)
    assert QUESTION in said(await start_recovery(owner))
    assert "Passo 4 di 5" in last_text(await owner.send(ANSWER))


async def test_a_hold_set_meanwhile_stops_a_strangers_open_recovery(
    sqlite_bot: Bot, clock: FakeClock
) -> None:
    owner = await registered(sqlite_bot)
    stranger = sqlite_bot.user(1403)
    await start_recovery(stranger)
    await start_recovery(owner)
    account = await stores(sqlite_bot.services).accounts.get_by_email(MARIO_EMAIL)
    await stores(sqlite_bot.services).accounts.set_recovery_lock(account.id, clock() + timedelta(minutes=20))
    assert LOCKED in last_text(await stranger.send(ANSWER))
    assert "Passo 4 di 5" in last_text(await owner.send(ANSWER))  # the owner is never held for strangers


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("corta", "troppo corta"),
        ("password123", "tra le più usate"),
        ("Mario Rossi 1975", "non deve contenere i suoi dati"),
        ("UG-100234 di casa", "non deve contenere i suoi dati"),
        ("Ciao mario.rossi", "non deve contenere i suoi dati"),
    ],
)
async def test_new_password_rules(sqlite_bot: Bot, password: str, expected: str) -> None:
    owner = await registered(sqlite_bot)
    await start_recovery(owner)
    await owner.send(ANSWER)
    events = await owner.send(password)
    assert owner.last_message_id in deleted_ids(events)
    assert expected in said(events) and "Passo 4 di 5" in last_text(events)
    # Still possible to finish with a good one.
    await owner.send(NEW_PASSWORD)
    assert DONE in last_text(await owner.send(NEW_PASSWORD)).lower()


async def test_the_current_password_gets_no_answer_of_its_own(sqlite_bot: Bot) -> None:
    """Refusing the old password would confirm a guess of it: it is taken like any other good one."""
    owner = await registered(sqlite_bot)
    await start_recovery(owner)
    await owner.send(ANSWER)
    guess = await owner.send(PASSWORD)
    other = said(await owner.send("/indietro"))  # back to the new password: try a different one
    assert "Passo 4 di 5" in other
    fresh = await owner.send(NEW_PASSWORD)
    assert said(guess) == said(fresh) and "Passo 5 di 5" in last_text(fresh)
    assert DONE in last_text(await owner.send(NEW_PASSWORD)).lower()


async def test_new_passwords_that_differ_are_asked_again(sqlite_bot: Bot) -> None:
    owner = await registered(sqlite_bot)
    await start_recovery(owner)
    await answer_all(owner, ANSWER, NEW_PASSWORD)
    events = await owner.send(NEW_PASSWORD + "!")
    assert "Le due password non coincidono" in said(events) and "Passo 4 di 5" in last_text(events)
    account = await stores(sqlite_bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert await sqlite_bot.services.hasher.verify(PASSWORD, account.password_hash)  # unchanged


async def test_back_from_the_answer_asks_the_code_again(sqlite_bot: Bot) -> None:
    owner = await registered(sqlite_bot)
    await start_recovery(owner)
    assert "codice cliente" in last_text(await owner.send("/indietro"))
    assert QUESTION in said(await owner.send(MARIO["code"]))


async def test_cancel_and_timeout_forget_the_draft(sqlite_bot: Bot, clock: FakeClock) -> None:
    owner = await registered(sqlite_bot)
    await start_recovery(owner)
    await owner.send(ANSWER)
    assert "annullata" in last_text(await owner.send("/annulla"))
    assert "recovery" not in sqlite_bot.app.user_data[owner.user_id]

    await start_recovery(owner)
    await owner.send(ANSWER)
    clock.advance(minutes=16)
    assert "inattività" in last_text(await owner.send(NEW_PASSWORD))
    assert "recovery" not in sqlite_bot.app.user_data[owner.user_id]
    account = await stores(sqlite_bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert await sqlite_bot.services.hasher.verify(PASSWORD, account.password_hash)


async def test_recovery_lifts_the_users_own_login_lock(sqlite_bot: Bot) -> None:
    owner = await registered(sqlite_bot)
    for _ in range(5):
        await login(owner, password=WRONG_PASSWORD)
    assert "Troppi tentativi" in said(await login(owner))
    assert DONE in last_text(await recover(owner)).lower()
    assert LOGGED_IN in said(await login(owner, password=NEW_PASSWORD))


async def test_recovery_in_english(sqlite_bot: Bot) -> None:
    await registered(sqlite_bot)
    user = sqlite_bot.user(1601, language_code="en")
    assert "Let's set a new password" in said(await user.send("/recover"))
    await answer_all(user, MARIO_EMAIL, MARIO["code"], ANSWER, NEW_PASSWORD)
    assert "You can now log in with /login" in last_text(await user.send(NEW_PASSWORD))


async def test_no_secret_is_stored_logged_or_kept_in_conversation_data(
    bot: Bot, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = await registered(bot)
    await login(owner, password=WRONG_PASSWORD)
    await login(owner)
    await owner.send("/esci")
    await start_recovery(owner)
    await owner.send(WRONG_ANSWER)
    await owner.send(ANSWER)
    await owner.send(PASSWORD)  # refused: the same as the old one
    await owner.send(NEW_PASSWORD)
    await recover(owner, new_password="Vento di maestrale 77")
    await login(owner, email="nessuno@example.it", password="Segreto sconosciuto 5")
    await login(owner, password="Vento di maestrale 77")
    # Half-way through another recovery, so the data of an open conversation are looked at too.
    await start_recovery(owner)
    await answer_all(owner, ANSWER, "Pioggia leggera 42")

    secrets = secret_variants(
        PASSWORD,
        WRONG_PASSWORD,
        NEW_PASSWORD,
        "Vento di maestrale 77",
        "Pioggia leggera 42",
        "Segreto sconosciuto 5",
        ANSWER,
        WRONG_ANSWER,
        rules.answer.normalize(ANSWER),
    )
    stored = "\n".join(await stored_values(bot.services.db))
    assert "$2b$" in stored  # the scan does read the hash columns
    assert MARIO_EMAIL in stored
    logged = "\n".join(record.getMessage() for record in caplog.records)
    conversation = repr(bot.app.user_data) + repr(bot.app.chat_data) + repr(bot.app.bot_data)
    assert "recovery" in bot.app.user_data[owner.user_id]  # the open recovery is part of the scan
    for secret in secrets:
        assert secret not in stored, f"{secret!r} stored in the database"
        assert secret not in logged, f"{secret!r} in the logs"
        assert secret not in conversation, f"{secret!r} in the conversation data"
