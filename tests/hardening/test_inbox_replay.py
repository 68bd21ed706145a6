"""The update inbox in the whole bot (bot/inbox.py, bot/application.py): handled means saved, a crash between
the reply and the save is replayed by the next process without a step going back, an update delivered again
is not handled again, a takeover between a password and its repetition asks for nothing again, and what
cannot be replayed is set aside with one log line. In process, with the offline stand-in, on both databases.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from storage.db import Database
from storage.inbox import Fence, Superseded, raise_epoch
from storage.models import AuditEvent, BotConversation, BotInbox
from tests.conftest import FakeClock
from tests.kit.accountkit import registered
from tests.kit.botkit import GIULIA, MARIO, PASSWORD, Bot, answer_all, running_bot, texts_of
from unogas_bot.bot import inbox as bot_inbox
from unogas_bot.bot.serving import replay_inbox

KEY = secrets.token_bytes(32)
USER = 5151


async def _inbox(db: Database) -> dict[int, tuple[bool, bool]]:
    """update id -> (handled, payload kept)."""
    table = BotInbox.__table__
    async with db.read() as conn:
        rows = await conn.execute(select(table.c.update_id, table.c.handled_at, table.c.payload))
        return {int(u): (h is not None, p is not None) for u, h, p in rows}


async def _state(db: Database) -> str | None:
    async with db.read() as conn:
        query = select(BotConversation.state).where(BotConversation.name == "registration")
        return (await conn.execute(query)).scalar()


async def _to_tax_code(bot: Bot) -> None:
    user = bot.user(USER)
    await answer_all(user, "/registrati", "continua", MARIO["code"], "persona", MARIO["first"])


async def _replayed(bot: Bot) -> int:
    bot.api.register_chat(USER)  # the chat exists on Telegram's side (this stand-in starts empty)
    count = await replay_inbox(bot.app)  # as `run` does before anything new
    await bot.app.update_queue.join()
    return count


def _cut_off(bot: Bot) -> None:
    """From now on the bot's writes of conversation state fail, as when the process is about to die."""

    async def unreachable(batch: Any) -> None:
        raise OperationalError("COMMIT", {}, ConnectionResetError("the connection went away"))

    bot.app.persistence._write = unreachable  # type: ignore[attr-defined,union-attr]


async def test_an_update_is_saved_with_its_handled_mark_before_the_next_one(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock, inbox=KEY) as bot:
        user = bot.user(USER)
        await answer_all(user, "/registrati", "continua")
        assert await _state(database) == '"customer_code"', "saved when the reply came, no interval"
        assert await _inbox(database) == {1: (True, False), 2: (True, False)}, "handled: payloads gone"
        await user.send(MARIO["code"])
        assert await _state(database) == '"kind"'
        assert (await _inbox(database))[3] == (True, False)


async def test_a_crash_between_the_reply_and_the_save_is_answered_again_and_nothing_goes_back(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock, inbox=KEY) as first:
        await _to_tax_code(first)
        _cut_off(first)
        told = texts_of(await first.user(USER).send(MARIO["last"]))
        assert "Passo 5 di 12" in told[-1], "the customer read the next question"
        first.app.fenced = True  # it dies: nothing more is written
    assert await _state(database) == '"last_name"', "the answer was not saved"
    assert (await _inbox(database))[6] == (False, True), "so the update still waits"

    async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=7) as second:
        assert await _replayed(second) == 1
        assert second.api.texts_to(USER)[-1] == told[-1], "the same reply again: at most one repeat"
        assert await _state(database) == '"tax_code"'
        told = texts_of(await second.user(USER).send(MARIO["tax"]))
        assert "Passo 6 di 12" in told[-1], "the next answer goes to the next question"
        assert len(second.api.texts_to(USER)) == 2
    assert all(handled for handled, _ in (await _inbox(database)).values())


async def test_an_update_delivered_again_is_not_handled_again(database: Database, clock: FakeClock) -> None:
    async with running_bot(database, clock, inbox=KEY) as bot:
        user = bot.user(USER)
        await user.send("/registrati")
        said = len(bot.api.texts_to(USER))
        data = user._new_message("/registrati")  # the same update, delivered twice
        data.setdefault("entities", [{"type": "bot_command", "offset": 0, "length": 11}])
        update = {"update_id": 1, "message": data}
        await bot.sim.process(update)
        assert len(bot.api.texts_to(USER)) == said, "nothing answered twice"
        assert bot.app.inbox.duplicates == 1


async def test_a_takeover_between_a_password_and_its_repetition_asks_for_nothing_again(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock, inbox=KEY) as first:
        for user_id, customer, email in (
            (USER, MARIO, "mario.rossi@example.it"),
            (USER + 1, GIULIA, "g@example.it"),
        ):
            user = first.user(user_id)
            await answer_all(user, "/registrati", "continua", customer["code"], "persona", customer["first"])
            await answer_all(user, customer["last"], customer["tax"], "salta", email)
            assert "Passo 9 di 12" in texts_of(await user.send(PASSWORD))[-1]
    async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=100) as second:
        told = texts_of(await second.user(USER).send(PASSWORD))
        assert "Passo 10 di 12" in told[-1], told
    # With a key of the process only (as before, and as the console still has) the pair is asked again.
    async with running_bot(database, clock, demo=False, first_update_id=200) as third:
        told = texts_of(await third.user(USER + 1).send(PASSWORD))
        assert any("di nuovo questo dato" in t for t in told), told


async def test_updates_dropped_by_flood_control_are_not_replayed(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock, inbox=KEY) as bot:
        user = bot.user(USER)
        limit = bot.services.settings.limits.chat_queue_limit
        await asyncio.gather(*(user.send(f"messaggio {i}") for i in range(2 * limit)))
        await bot.app.update_persistence()  # the drops' marks go with the next write
        rows = await _inbox(database)
        assert bot.app.update_processor.dropped  # type: ignore[attr-defined]
        assert rows and all(handled for handled, _ in rows.values())


async def test_what_cannot_be_replayed_is_set_aside_in_one_line(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bot(database, clock, inbox=KEY) as first:
        await _to_tax_code(first)
        _cut_off(first)
        await first.user(USER).send(MARIO["last"])
        first.app.fenced = True
    async with running_bot(database, clock, inbox=secrets.token_bytes(32), demo=False) as other_key:
        assert await _replayed(other_key) == 0
        assert other_key.api.texts_to(USER) == []
    assert all(handled for handled, _ in (await _inbox(database)).values()), "set aside"
    lines = [r.getMessage() for r in caplog.records if r.name == "unogas_bot.bot.inbox"]
    assert lines == [
        "inbox: 1 waiting update(s) could not be opened (INBOX_KEY or the bot token changed?); "
        "set aside unanswered"
    ]
    assert MARIO["last"] not in caplog.text

    async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=50) as crashing:
        _cut_off(crashing)
        await crashing.user(USER).send("/annulla")
        crashing.app.fenced = True
    monkeypatch.setattr(bot_inbox, "MAX_REPLAYS", 0)  # as if it had crashed every leader before
    caplog.clear()
    async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=60) as next_leader:
        assert await _replayed(next_leader) == 0
    assert [r.levelname for r in caplog.records if r.name == "unogas_bot.bot.inbox"] == ["ERROR"]


async def test_a_write_that_finds_a_newer_leader_stops_the_process(
    database: Database, clock: FakeClock
) -> None:
    class Overtaken:
        """SQLite: another process took over (which its file lock rules out; here by hand)."""

        epoch = None

        async def check(self, conn: Any) -> None:
            raise Superseded("epoch 2 leads, this process has 1")

    async with running_bot(database, clock, inbox=KEY) as bot:
        stopped: list[str] = []
        bot.app.on_superseded = stopped.append  # type: ignore[attr-defined]
        store = bot.app.inbox.store  # type: ignore[attr-defined]
        if database.dialect == "postgresql":
            database.fence = Fence(store.bot_id, await raise_epoch(database, store.bot_id))
            admit = bot.sim.admit
            assert admit is not None

            async def taken_over_meanwhile(update: Any, data: Any) -> bool:
                new = await admit(update, data)
                await raise_epoch(database, store.bot_id)  # a standby takes over before the save
                return new

            bot.sim.admit = taken_over_meanwhile
        else:
            database.fence = Overtaken()
        try:
            await bot.user(USER).send("/registrati")
        finally:
            database.fence = None
        assert stopped and "a newer leader took over" in stopped[0]
        assert bot.app.fenced  # type: ignore[attr-defined]
    assert await _state(database) is None, "nothing of it was written"
    assert (await _inbox(database))[1] == (False, True), "the update waits for the new leader"


async def _audit(db: Database, event: str) -> int:
    async with db.read() as conn:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.event == event)
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize(
    ("before", "step", "event"),
    [
        (["/accedi", "mario.rossi@example.it"], PASSWORD, "login"),
        (["/accedi", "mario.rossi@example.it", PASSWORD], "/esci", "logout"),
        (
            ["/accedi", "mario.rossi@example.it", PASSWORD, "/cambia_telefono", PASSWORD],
            "347 555 0101",
            "phone_changed",
        ),
        (
            ["/accedi", "mario.rossi@example.it", PASSWORD, "/cancella_profilo", PASSWORD],
            "press: Cancella il profilo",
            "erased",
        ),
    ],
    ids=["login", "logout", "phone", "erase"],
)
async def test_a_step_that_changed_the_account_is_answered_the_same_when_handled_again(
    database: Database, clock: FakeClock, before: list[str], step: str, event: str
) -> None:
    """The first handling committed the change and answered, then died before saving: the next leader
    handles the update again, stores nothing twice and answers as the first time (not "not logged in")."""
    async with running_bot(database, clock, inbox=KEY) as first:
        await registered(first, USER)
        await answer_all(first.user(USER), *before)
        _cut_off(first)
        user = first.user(USER)
        pressed = step.removeprefix("press: ")
        told = texts_of(await (user.press(pressed) if pressed != step else user.send(step)))
        first.app.fenced = True
    assert await _audit(database, event) == 1
    async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=500) as second:
        assert await _replayed(second) == 1
        assert second.api.texts_to(USER) == told, "the same answer"
    assert await _audit(database, event) == 1, "stored once"
    assert all(handled for handled, _ in (await _inbox(database)).values())
