"""The logged-in customer's own data (issue 15), through the real Application: the privacy notice, the
profile changes, the export and the erasure; each asks the current password first, limited like a login."""

from __future__ import annotations

import json

from sqlalchemy import select

from storage.models import Account, AuditEvent, TelegramSession
from tests.conftest import FakeClock
from tests.kit.accountkit import (
    MARIO_EMAIL,
    NEW_PASSWORD,
    WRONG_PASSWORD,
    deleted_ids,
    login,
    registered,
    said,
)
from tests.kit.botkit import MARIO, PASSWORD, Bot, answer_all, last_text, register_person
from tests.kit.stores import stores
from unogas_bot.offline.events import DocumentSent


def documents(events: list[object]) -> dict[str, bytes]:
    return {e.filename: e.content for e in events if isinstance(e, DocumentSent)}


async def test_registration_stores_the_acknowledged_notice_version_and_time(
    bot: Bot, clock: FakeClock
) -> None:
    user = bot.user(1001)
    events = await user.send("/registrati")
    assert "Informativa sulla privacy" in said(events) and bot.services.settings.privacy_notice_url in said(
        events
    )
    await register_person(user)  # presses Continua again: a new start shows the notice again
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.privacy_version == bot.services.settings.privacy_notice_version
    assert account.privacy_acknowledged_at == clock()


async def test_privacy_command_shows_the_notice_in_both_languages_even_inside_a_form(bot: Bot) -> None:
    assert "Informativa completa" in last_text(await bot.user(1001).send("/privacy"))
    english = bot.user(1002, language_code="en")
    await english.send("/login")
    assert "Full notice" in last_text(await english.send("/privacy"))
    assert "e-mail" in last_text(await english.send("/help"))  # the login form is still there


async def test_a_new_notice_version_is_shown_once_after_login(bot: Bot) -> None:
    user = await registered(bot)
    bot.services.settings = bot.services.settings.__class__(
        **{**bot.services.settings.__dict__, "privacy_notice_version": "2026-01"}
    )
    assert "informativa sulla privacy è cambiata" in said(await login(user))
    assert "è cambiata" not in said(await user.send("/profilo"))
    await user.send("/esci")
    assert "è cambiata" not in said(await login(user))
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.privacy_version == "2026-01"


async def test_change_email_asks_the_password_deletes_it_and_audits(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    assert "password attuale" in last_text(await user.send("/cambia_email"))
    events = await user.send(PASSWORD)
    assert user.last_message_id in deleted_ids(events)
    assert "nuovo indirizzo e-mail" in last_text(events)
    assert "mario@example.org" in last_text(await user.send("mario@example.org"))
    account = await stores(bot.services).accounts.get_by_email("mario@example.org")
    assert account is not None
    assert "email_changed" in [e.event for e in await stores(bot.services).accounts.recent_events(account.id)]


async def test_change_password_keeps_this_session_and_ends_the_others(bot: Bot) -> None:
    user = await registered(bot)
    other = bot.user(1002)
    await login(user)
    await login(other)
    await answer_all(user, "/cambia_password", PASSWORD, NEW_PASSWORD)
    assert "password è stata cambiata" in said(await user.send(NEW_PASSWORD))
    assert await stores(bot.services).accounts.session_account(user.user_id) is not None
    assert await stores(bot.services).accounts.session_account(other.user_id) is None
    await user.send("/esci")
    assert "Accesso effettuato" in said(await login(user, password=NEW_PASSWORD))


async def test_change_phone_and_question_in_english(bot: Bot) -> None:
    await registered(bot)
    user = bot.user(1003, language_code="en")
    await login(user)
    await answer_all(user, "/change_phone", PASSWORD)
    assert "phone number has been removed" in last_text(await user.send("skip"))
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.phone is None
    await answer_all(user, "/change_question", PASSWORD, "Where did I spend my first holiday?", "Rimini")
    assert "new security question" in last_text(await user.send("Rimini"))
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account.security_question == "Where did I spend my first holiday?"


async def test_wrong_current_passwords_are_limited_like_logins(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    await user.send("/cambia_email")
    for _ in range(4):
        assert "non è corretta" in said(await user.send(WRONG_PASSWORD))
    assert "Troppi tentativi" in last_text(await user.send(WRONG_PASSWORD))
    # The address is locked now, for /accedi too: even the right password waits.
    await user.send("/esci")
    assert "Troppi tentativi" in said(await login(user))


async def test_cancel_at_every_step_changes_nothing(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    for command, replies in (
        ("/cambia_email", [PASSWORD]),
        ("/cambia_telefono", [PASSWORD]),
        ("/cambia_domanda", [PASSWORD, "Qual era il mio primo numero di casa?"]),
        ("/cambia_password", [PASSWORD, NEW_PASSWORD]),
        ("/cancella_profilo", [PASSWORD]),
    ):
        for done in range(len(replies) + 1):
            await answer_all(user, command, *replies[:done]) if done else await user.send(command)
            assert "annullat" in last_text(await user.send("/annulla")).lower()
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account is not None and account.phone is not None


async def test_not_logged_in_is_told_to_log_in(bot: Bot) -> None:
    user = bot.user(1001)
    for command in ("/cambia_email", "/i_miei_dati", "/cancella_profilo"):
        assert "/accedi" in last_text(await user.send(command))


async def test_export_holds_every_stored_field_and_no_hash(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    await user.send("/i_miei_dati")
    events = await user.send(PASSWORD)
    files = documents(events)
    name = f"unogas-{MARIO['code']}"
    assert set(files) == {f"{name}.json", f"{name}.txt"}
    document = json.loads(files[f"{name}.json"])
    async with bot.services.db.session() as session:
        row = (await session.execute(select(Account))).scalar_one()
        stored = {c.key: getattr(row, c.key) for c in Account.__table__.columns}
        hashes = (row.password_hash, row.answer_hash)
        sessions = (await session.execute(select(TelegramSession))).scalars().all()
    for key, value in stored.items():
        if key in {"id", "customer_id", "password_hash", "answer_hash"}:
            assert key not in document["profile"]
        else:
            expected = value.isoformat() if hasattr(value, "isoformat") else value
            assert document["profile"][key] == expected, key
    assert document["customer_record"]["tax_code"] == MARIO["tax"]
    assert len(document["telegram_sessions"]) == len(sessions) == 1
    assert "data_exported" in [e["event"] for e in document["audit_events"]]
    for content in files.values():
        for secret in (*hashes, PASSWORD):
            assert secret.encode() not in content
    assert MARIO["tax"].encode() in files[f"{name}.txt"]


async def test_erasure_needs_the_button_then_leaves_only_pseudonymised_audit_rows(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    await answer_all(user, "/cancella_profilo", PASSWORD)
    assert "Per confermare prema" in said(await user.send("cancella"))
    assert "cancellato" in last_text(await user.press("Cancella il profilo"))
    assert await stores(bot.services).accounts.count() == 0
    async with bot.services.db.session() as session:
        assert not (await session.execute(select(TelegramSession))).all()
        events = (await session.execute(select(AuditEvent))).scalars().all()
    assert events and all(e.customer_code is None and e.telegram_user_id is None for e in events)
    assert "erased" in [e.event for e in events]
    # The customer can register again with the same customer code.
    again = bot.user(1009)
    assert "correttamente salvate" in last_text(await register_person(again))
