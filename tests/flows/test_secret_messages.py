"""A message that may hold a password or an answer never stays in the chat, whatever way it came.

Every path issue 12 found through the real Application: the normal answer, a secret sent after the
conversation expired (registration, login, recovery), as a photo's or a document's caption, right after the
lock message, in an edit of an older message, and a deletion that times out.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from conversations import secret_guard
from tests.conftest import FakeClock
from tests.kit.accountkit import (
    MARIO_EMAIL,
    WRONG_PASSWORD,
    deleted_ids,
    login,
    registered,
    said,
    start_recovery,
)
from tests.kit.botkit import ANSWER, MARIO, PASSWORD, QUESTION, Bot, answer_all
from unogas_bot.bot import housekeeping
from unogas_bot.offline import SimUser


async def at_registration_password(user: SimUser) -> None:
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", "mario@example.it")


def was_deleted(user: SimUser, events: list[object]) -> bool:
    return user.last_message_id in deleted_ids(events)


async def test_the_normal_answer_is_deleted_and_the_next_ordinary_answer_is_not(sqlite_bot: Bot) -> None:
    user = sqlite_bot.user()
    await at_registration_password(user)
    assert was_deleted(user, await user.send(PASSWORD))
    assert was_deleted(user, await user.send(PASSWORD))
    assert not was_deleted(user, await user.send(QUESTION))  # an ordinary question: kept


@pytest.mark.parametrize("flow", ["registration", "login", "recovery"])
async def test_a_secret_sent_after_the_expiry_is_deleted_and_so_is_a_second_try(
    sqlite_bot: Bot, clock: FakeClock, flow: str
) -> None:
    user = sqlite_bot.user()
    if flow == "registration":
        await at_registration_password(user)
    elif flow == "login":
        user = await registered(sqlite_bot)
        await answer_all(user, "/accedi", MARIO_EMAIL)
    else:
        user = await registered(sqlite_bot)
        await start_recovery(user)
    clock.advance(minutes=20)
    late = await user.send(ANSWER if flow == "recovery" else PASSWORD)
    assert was_deleted(user, late) and "15 minuti" in said(late)
    assert was_deleted(user, await user.send(PASSWORD))  # sent again without reading: still deleted
    clock.advance(minutes=3)
    assert not was_deleted(user, await user.send("ciao"))  # the grace is over


@pytest.mark.parametrize("kind", ["photo", "document"])
async def test_a_secret_in_a_caption_is_deleted(sqlite_bot: Bot, kind: str) -> None:
    user = await registered(sqlite_bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    if kind == "photo":
        events = await user.send_photo(caption=PASSWORD)
    else:
        events = await user.send_document(caption=PASSWORD)
    assert was_deleted(user, events)
    assert "Passo 2 di 2" in said(events)  # asked again, nothing lost


async def test_a_secret_typed_right_after_the_lock_message_is_deleted(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    for _ in range(4):
        await login(user, password=WRONG_PASSWORD)
    locked = await login(user, password=WRONG_PASSWORD)
    assert "Troppi tentativi" in said(locked)
    assert was_deleted(user, await user.send(PASSWORD))


async def test_an_edit_that_now_holds_the_secret_is_deleted(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    email_message = user.last_message_id
    events = await user.edit(email_message, PASSWORD)
    assert email_message in deleted_ids(events)


async def test_commands_are_not_deleted(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    assert not was_deleted(user, await user.send("/aiuto"))


async def test_a_deletion_that_times_out_is_tried_again(
    sqlite_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secret_guard, "RETRY_WAITS", (0.01, 0.01, 0.01))
    user = await registered(sqlite_bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    sqlite_bot.api.fail_next("deleteMessage", "timeout", times=2)
    await user.send(PASSWORD)
    secret = user.last_message_id
    await asyncio.sleep(0.2)
    assert secret in deleted_ids(sqlite_bot.api.events) and sqlite_bot.api.pending_faults == 0


async def test_retries_are_bounded(
    sqlite_bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(secret_guard, "RETRY_WAITS", (0.01, 0.01))
    user = await registered(sqlite_bot)
    await answer_all(user, "/accedi", MARIO_EMAIL)
    sqlite_bot.api.fail_next("deleteMessage", "timeout", times=5)
    caplog.set_level(logging.WARNING)
    await user.send(PASSWORD)
    await asyncio.sleep(0.2)
    assert sqlite_bot.api.pending_faults == 2  # the first try and two retries, then it gave up
    assert any("out of tries" in r.getMessage() for r in caplog.records)


async def test_a_secret_sent_after_the_draft_was_purged_is_deleted(sqlite_bot: Bot, clock: FakeClock) -> None:
    user = sqlite_bot.user()
    await at_registration_password(user)
    clock.advance(hours=2)
    assert await housekeeping.purge_drafts(sqlite_bot.app) == 1
    assert was_deleted(user, await user.send(PASSWORD))  # the conversation is gone, the guard is not
    assert was_deleted(user, await user.send(PASSWORD))  # within the grace
    clock.advance(minutes=3)
    assert not was_deleted(user, await user.send("ciao"))
