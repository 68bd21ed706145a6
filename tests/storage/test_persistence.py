"""Conversations survive restarts: storage/persistence.py on its own and through the bot, on both databases.

A "restart" is a second `running_bot` on the same database: a new Application, new Services (so a new
EphemeralMac, as in a new process) loading what the first one saved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from time import monotonic as loop_time
from typing import Any

import pytest
import sqlalchemy as sa

from storage.db import Database
from storage.models import BotChatData, BotConversation, BotUserData
from storage.persistence import SqlPersistence
from tests.conftest import FakeClock
from tests.kit.botkit import ANSWER, MARIO, PASSWORD, QUESTION, answer_all, last_text, running_bot, texts_of
from tests.kit.botkit import SEED_SENTENCE as SAVED
from tests.kit.stores import stores
from unogas_bot.bot import housekeeping
from unogas_bot.i18n import texts
from unogas_bot.offline import render_text


def plain(key: str, **params: Any) -> str:
    """A catalogue text as the user reads it (Italian)."""
    return render_text(texts.t("it", key, **params), "HTML")


async def _rows(db: Database, model: type) -> list[tuple[Any, ...]]:
    async with db.session() as session:
        return [tuple(row) for row in await session.execute(sa.select(model.__table__))]


async def _dump(db: Database) -> str:
    """Everything the persistence tables hold, as text."""
    rows = [row for model in (BotUserData, BotChatData, BotConversation) for row in await _rows(db, model)]
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


# --- the persistence on its own -------------------------------------------------------------------------


async def test_what_is_flushed_is_loaded_by_a_new_instance(database: Database) -> None:
    first = SqlPersistence(database)
    draft = {"registration": {"customer_code": "UG-100234", "_history": ["customer_code"], "_n": 2}}
    await first.update_user_data(1001, draft)
    await first.update_user_data(1002, {"lang": "en"})
    await first.update_chat_data(-100123, {"redirected": True})
    await first.update_conversation("registration", (1001, 1001), "kind")
    await first.update_conversation("login", (1002, 1002), "login_email")
    assert first.pending == 5
    assert await first.save()
    assert first.writes == 1, "one transaction for everything noted"
    assert first.pending == 0

    second = SqlPersistence(database)
    assert await second.get_user_data() == {1001: draft, 1002: {"lang": "en"}}
    assert await second.get_chat_data() == {-100123: {"redirected": True}}
    assert await second.get_conversations("registration") == {(1001, 1001): "kind"}
    assert await second.get_conversations("login") == {(1002, 1002): "login_email"}
    assert await second.get_conversations("recovery") == {}


async def test_ended_conversations_and_empty_data_leave_no_row(database: Database) -> None:
    persistence = SqlPersistence(database)
    await persistence.update_user_data(1001, {"registration": {"_n": 1}})
    await persistence.update_user_data(1002, {"lang": "it"})
    await persistence.update_chat_data(-1, {"redirected": True})
    await persistence.update_conversation("registration", (1001, 1001), "customer_code")
    await persistence.save()

    await persistence.update_user_data(1001, {})  # the form finished and popped its draft
    await persistence.drop_user_data(1002)
    await persistence.drop_chat_data(-1)
    await persistence.update_conversation("registration", (1001, 1001), None)  # ConversationHandler.END
    await persistence.save()
    assert await _rows(database, BotUserData) == []
    assert await _rows(database, BotChatData) == []
    assert await _rows(database, BotConversation) == []


async def test_only_what_changed_is_written(database: Database) -> None:
    persistence = SqlPersistence(database)
    await persistence.update_user_data(1001, {"lang": "en"})
    await persistence.update_conversation("registration", (1001, 1001), "email")
    await persistence.save()
    assert persistence.writes == 1
    # PTB hands over every user an update touched, changed or not: the same data is not written again.
    await persistence.update_user_data(1001, {"lang": "en"})
    await persistence.update_user_data(1003, {})
    await persistence.update_conversation("registration", (1001, 1001), "email")
    assert persistence.pending == 0
    await persistence.save()
    assert persistence.writes == 1
    # Also after a restart: what was loaded counts as written.
    again = SqlPersistence(database)
    await again.get_user_data()
    await again.get_conversations("registration")
    await again.update_user_data(1001, {"lang": "en"})
    await again.update_conversation("registration", (1001, 1001), "email")
    assert again.pending == 0


async def test_an_unreachable_database_keeps_the_changes_for_the_next_flush(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    persistence = SqlPersistence(database)
    await persistence.update_user_data(1001, {"registration": {"_n": 1}})
    await persistence.update_conversation("registration", (1001, 1001), "customer_code")

    async def unreachable(batch: object) -> None:
        raise OSError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(persistence, "_write", unreachable)
        assert not await persistence.save()
        # Meanwhile the conversation went on: the newer data wins when the database is back.
        await persistence.update_user_data(1001, {"registration": {"_n": 2}})
        await persistence.update_conversation("registration", (1001, 1001), "kind")
        await persistence.flush()  # the shutdown path: no exception either
    assert persistence.pending == 2
    assert await persistence.save()
    loaded = SqlPersistence(database)
    assert await loaded.get_user_data() == {1001: {"registration": {"_n": 2}}}
    assert await loaded.get_conversations("registration") == {(1001, 1001): "kind"}


async def test_data_that_is_not_json_is_refused(database: Database) -> None:
    persistence = SqlPersistence(database)
    with pytest.raises(TypeError):
        await persistence.update_user_data(1001, {"when": timedelta(minutes=1)})


# --- through the bot: stop at a question, start again ---------------------------------------------------


async def test_a_restart_resumes_at_the_same_question_with_the_answers_so_far(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        user = bot.user(1001)
        await user.send("/registrati")
        await user.send("continua")
        await user.send(MARIO["code"])
        await user.press("Persona")
        events = await answer_all(user, MARIO["first"], MARIO["last"])
        assert plain("q_tax_code_person") in last_text(events)

    async with running_bot(database, clock, demo=False) as restarted:
        user = restarted.user(1001)
        events = await user.send(MARIO["tax"])
        assert plain("q_phone") in last_text(events), "the answers before the restart are still there"
        await answer_all(user, "salta", "mario.rossi@example.it", PASSWORD, PASSWORD, QUESTION, ANSWER)
        events = await user.send(ANSWER)
        summary = last_text(events)
        assert "Mario" in summary and "Rossi" in summary and MARIO["code"] in summary
        events = await user.press("Salva")
        assert SAVED in last_text(events)
        assert await stores(restarted.services).accounts.count() == 1
        # The secret guard's keyed digests (conversations/secret_guard.py) last 2 minutes: housekeeping
        # then forgets them with the rest.
        clock.advance(minutes=3)
        await housekeeping.purge_drafts(restarted.app)
    # A finished conversation leaves nothing behind.
    assert await _rows(database, BotConversation) == []
    assert await _rows(database, BotUserData) == []


async def test_a_restart_before_every_reply_still_registers(database: Database, clock: FakeClock) -> None:
    """Each reply goes to a new process; only the two halves of a secret pair share one (see below)."""
    steps: list[tuple[str, ...]] = [
        ("/registrati",),
        ("continua",),
        (MARIO["code"],),
        ("persona",),
        (MARIO["first"],),
        (MARIO["last"],),
        (MARIO["tax"],),
        ("347 123 4567",),
        ("mario.rossi@example.it",),
        (PASSWORD, PASSWORD),
        (QUESTION,),
        (ANSWER, ANSWER),
        ("salva",),
    ]
    events: list[object] = []
    for i, replies in enumerate(steps):
        async with running_bot(database, clock, demo=i == 0) as bot:
            events = await answer_all(bot.user(1001), *replies)
            assert plain("error_generic") not in texts_of(events)
    assert SAVED in last_text(events)


async def test_a_half_typed_password_pair_is_asked_again_after_a_restart(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        user = bot.user(1001)
        await user.send("/registrati")
        await user.send("continua")
        await user.send(MARIO["code"])
        await user.press("Persona")
        await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", "mario.rossi@example.it")
        events = await user.send(PASSWORD)
        assert plain("q_password_repeat") in last_text(events)
        digest = bot.app.user_data[1001]["registration"]["_mac"]["password"]

    stored = await _dump(database)
    assert digest in stored, "the first entry is kept only as the old process's keyed digest"
    assert PASSWORD not in stored and PASSWORD.lower() not in stored

    async with running_bot(database, clock, demo=False) as restarted:
        user = restarted.user(1001)
        events = await user.send(PASSWORD)  # the repetition, after the restart
        said = texts_of(events)
        assert plain("secret_expired") in said[0]
        assert plain("q_password") in said[-1]
        events = await answer_all(user, PASSWORD, PASSWORD)
        assert plain("q_question") in last_text(events)
        await answer_all(user, QUESTION, ANSWER)
        events = await user.send(ANSWER)
        events = await user.press("Salva")
        assert SAVED in last_text(events)
    account = await stores(restarted.services).accounts.get_by_email("mario.rossi@example.it")
    assert account is not None


async def test_the_inactivity_timeout_holds_across_a_restart(database: Database, clock: FakeClock) -> None:
    async with running_bot(database, clock) as bot:
        user = bot.user(1001)
        await user.send("/registrati")
        await user.send("continua")
        await user.send(MARIO["code"])
    clock.advance(minutes=16)
    async with running_bot(database, clock, demo=False) as restarted:
        user = restarted.user(1001)
        events = await user.send("persona")
        assert plain("expired", minutes=15, command="/registrati") in last_text(events)
        assert "registration" not in restarted.app.user_data.get(1001, {})
        await user.send("/registrati")
        events = await user.send("continua")
        assert plain("q_customer_code") in last_text(events), "a new registration starts from the top"
    assert [name for name, *_ in await _rows(database, BotConversation)] == ["registration"]


async def test_within_the_timeout_a_restart_changes_nothing(database: Database, clock: FakeClock) -> None:
    async with running_bot(database, clock) as bot:
        await bot.user(1001).send("/registrati")
        await bot.user(1001).send("continua")
    clock.advance(minutes=14)
    async with running_bot(database, clock, demo=False) as restarted:
        events = await restarted.user(1001).send(MARIO["code"])
        assert plain("q_kind") in last_text(events)


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 2.0) -> float:
    """Wait until `check()` holds; how long it took (fails after `within` seconds)."""
    started = loop_time()
    while not await check():
        assert loop_time() - started < within, "not written in time"
        await asyncio.sleep(0.01)
    return loop_time() - started


async def test_state_is_written_while_running_not_only_at_shutdown(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        persistence = bot.app.persistence
        assert persistence.update_interval <= 0.1
        user = bot.user(1001)
        await user.send("/registrati")
        await user.send("continua")
        await user.send(MARIO["code"])
        # Still running: what a crash would leave behind, a moment after the answer.
        expected = [("registration", "[1001,1001]", json.dumps("kind"), clock())]

        async def conversation_saved() -> bool:
            return await _rows(database, BotConversation) == expected

        # Written while the bot still runs (the context is still open), not at shutdown; a generous
        # deadline, since a busy machine may be slow, and no bound on the elapsed time.
        await _eventually(conversation_saved, within=10.0)
        (row,) = await _rows(database, BotUserData)
        assert json.loads(row[1])["registration"]["customer_code"] == MARIO["code"]

        writes = persistence.writes
        await user.send("/aiuto")  # asks the question again: a new serial for its buttons, a new time

        async def written() -> bool:
            return persistence.writes == writes + 1

        await _eventually(written)
        # Updates that change nothing stored write nothing.
        await bot.user(1002).send("ciao")
        await bot.user(1002).send("/aiuto")
        await asyncio.sleep(3 * persistence.update_interval)
        assert persistence.writes == writes + 1


async def test_language_choice_and_group_redirect_survive(database: Database, clock: FakeClock) -> None:
    async with running_bot(database, clock) as bot:
        english = bot.user(1001)
        await english.send("/lingua")
        await english.press("English")
        member = bot.user(1002, chat_id=-100555, chat_type="group")
        assert texts_of(await member.send("ciao"))
    async with running_bot(database, clock, demo=False) as restarted:
        events = await restarted.user(1001).send("/registrati")
        assert "Privacy notice" in "\n".join(texts_of(events))
        member = restarted.user(1002, chat_id=-100555, chat_type="group")
        assert not texts_of(await member.send("ciao")), "the group was already told once"


async def test_a_batch_the_database_refuses_is_dropped_not_retried_forever(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    persistence = SqlPersistence(database)
    await persistence.update_user_data(1001, {"lang": "en"})

    async def refuse(batch: object) -> None:
        raise sa.exc.DataError("INSERT ...", {}, ValueError("value too long"))

    with monkeypatch.context() as patch:
        patch.setattr(persistence, "_write", refuse)
        with pytest.raises(sa.exc.DataError):
            await persistence.save()
    assert persistence.pending == 0, "a bad batch does not block the writes after it"
    await persistence.update_user_data(1001, {"lang": "en"})  # the same data: written again this time
    assert await persistence.save()
    assert await SqlPersistence(database).get_user_data() == {1001: {"lang": "en"}}
