"""Attacks on issue 20's paths (the durable update inbox and fenced writes), each a break found first and
then fixed: in process, with the offline stand-in, on both databases."""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from telegram import Update

from storage.db import Database
from storage.models import BotConversation, BotInbox
from tests.conftest import FakeClock
from tests.kit.botkit import Bot, running_bot
from unogas_bot.bot import leader
from unogas_bot.bot.polling import Poller
from unogas_bot.bot.serving import replay_inbox

KEY = secrets.token_bytes(32)
USER = 6262


async def _inbox(db: Database) -> dict[int, tuple[bool, bool, int]]:
    """update id -> (handled, payload kept, replays)."""
    table = BotInbox.__table__
    async with db.read() as conn:
        rows = await conn.execute(
            select(table.c.update_id, table.c.handled_at, table.c.payload, table.c.replays)
        )
        return {int(u): (h is not None, p is not None, int(r)) for u, h, p, r in rows}


async def _state(db: Database) -> str | None:
    async with db.read() as conn:
        query = select(BotConversation.state).where(BotConversation.name == "registration")
        return (await conn.execute(query)).scalar()


def _update(bot: Bot, data: dict[str, Any]) -> Update:
    return Update.de_json(data, bot.app.bot)  # type: ignore[attr-defined]


async def test_the_same_update_delivered_twice_at_once_is_handled_once(
    database: Database, clock: FakeClock
) -> None:
    """A webhook retry racing the first delivery: both requests reach the inbox's group commit together.
    Before the fix each of them was told the update was new (the batch's set of new ids was shared), so
    the customer was answered twice."""
    async with running_bot(database, clock, inbox=KEY) as bot:
        user = bot.user(USER)
        data = {"update_id": 41, "message": user._new_message("/start")}
        data["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 6}]
        await asyncio.gather(bot.sim.process(data), bot.sim.process(copy.deepcopy(data)))
        await bot.app.update_queue.join()
        assert len(bot.api.texts_to(USER)) == 1, bot.api.texts_to(USER)
        assert bot.app.inbox.duplicates == 1
        # Several deliveries of it and of another update, in one batch.
        other = {"update_id": 42, "message": user._new_message("ciao")}
        taken = await asyncio.gather(
            *(bot.app.inbox.take(_update(bot, d), d) for d in (data, other, other, data, other))
        )
        assert taken == [False, True, False, False, False]


async def _leave_waiting(db: Database, clock: FakeClock, text: str, first_update_id: int = 1) -> None:
    """A leader takes `text` and dies before it is saved: the update waits in the inbox."""
    async with running_bot(db, clock, inbox=KEY, first_update_id=first_update_id) as bot:
        _cut_off(bot)
        await bot.user(USER).send(text)
        bot.app.fenced = True  # type: ignore[attr-defined]


def _cut_off(bot: Bot) -> None:
    async def unreachable(batch: Any) -> None:
        raise OperationalError("COMMIT", {}, ConnectionResetError("the connection went away"))

    bot.app.persistence._write = unreachable  # type: ignore[attr-defined]


async def test_leaders_that_never_started_an_update_do_not_set_it_aside(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Six leaders in a row read the waiting inbox and stopped before handling it (a webhook whose
    setWebhook kept failing during a Telegram outage, leadership bouncing on a flaky network). Before the
    fix every read counted as a replay, so the seventh leader set the customer's message aside unanswered
    as "crashing every leader", though no leader had ever started it."""
    await _leave_waiting(database, clock, "/start")
    for n in range(6):
        async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=100 + n) as idle:
            await idle.app.inbox.replay(idle.app.bot)  # type: ignore[attr-defined]
    async with running_bot(database, clock, inbox=KEY, demo=False, first_update_id=200) as leader:
        leader.api.register_chat(USER)
        assert await replay_inbox(leader.app) == 1  # type: ignore[arg-type]
        await leader.app.update_queue.join()  # type: ignore[attr-defined]
        assert len(leader.api.texts_to(USER)) == 1, "answered"
    assert not [r for r in caplog.records if r.name == "unogas_bot.bot.inbox"]
    assert (await _inbox(database))[1][0], "handled"


class _Telegram:
    """getUpdates answering one batch, then holding the long poll."""

    def __init__(self, batch: list[Update]) -> None:
        self.batch = batch
        self.offsets: list[int | None] = []
        self.asked_again = asyncio.Event()

    async def get_updates(self, offset: int | None = None, **_: Any) -> tuple[Update, ...]:
        self.offsets.append(offset)
        if len(self.offsets) == 1:
            return tuple(self.batch)
        self.asked_again.set()
        await asyncio.sleep(3600)
        return ()


async def test_a_lone_surrogate_in_a_message_does_not_stop_polling(
    database: Database, clock: FakeClock
) -> None:
    """JSON may carry half of a surrogate pair ("\\ud83d"), which has no UTF-8 form. Before the fix the
    inbox could not seal such an update: the polling loop died with UnicodeEncodeError, `run` ended, and
    every restart fetched the same batch again, so nobody was answered any more."""
    async with running_bot(database, clock, inbox=KEY) as bot:
        user = bot.user(USER)
        odd = _update(bot, {"update_id": 7, "message": user._new_message("ciao \ud83d")})
        fine = _update(bot, {"update_id": 8, "message": user._new_message("/start")})
        telegram = _Telegram([odd, fine])
        errors: list[Exception] = []

        async def process_error(update: object, error: Exception) -> None:
            errors.append(error)

        app = SimpleNamespace(bot=telegram, update_queue=asyncio.Queue(), process_error=process_error)
        poller = Poller(app, bot.app.inbox, ["message"])  # type: ignore[arg-type,attr-defined]
        task = asyncio.ensure_future(poller.run())
        asked = asyncio.ensure_future(telegram.asked_again.wait())
        await asyncio.wait({task, asked}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        poller.stop()
        await task
        assert telegram.offsets == [None, 9], "the batch was written and confirmed"
        assert [app.update_queue.get_nowait().update_id for _ in range(2)] == [7, 8]
        assert not errors
        replayed = await bot.app.inbox.replay(bot.app.bot)  # type: ignore[attr-defined]
        assert [u.message.text for u in replayed] == ["ciao \ud83d", "/start"], "and it opens again"


def _reply_lost_once(bot: Bot) -> list[int]:
    """The inbox's next write commits, and its answer is lost on the way back (the connection cut right
    after the server committed): the caller sees an error and cannot tell it was written."""
    store = bot.app.inbox.store  # type: ignore[attr-defined]
    admit = store.admit
    lost: list[int] = []

    async def committed_then_cut(arrived: Any, confirmed_below: int | None = None) -> set[int]:
        new = await admit(arrived, confirmed_below)
        if not lost:
            lost.extend(sorted(new))
            raise OperationalError("INSERT", {}, ConnectionResetError("the connection went away"))
        return new

    store.admit = committed_then_cut
    return lost


async def test_an_update_written_whose_answer_was_lost_is_still_handled(
    database: Database, clock: FakeClock
) -> None:
    """The inbox's write committed, then the connection broke before its answer came back: the webhook
    answered 503 and Telegram delivered the update again (polling fetched it again). Before the fix the
    second delivery was taken for a duplicate of one already handled: the message waited in the inbox,
    unanswered, until the next leader (or housekeeping deleted it a day later)."""
    async with running_bot(database, clock, inbox=KEY) as bot:
        lost = _reply_lost_once(bot)
        user = bot.user(USER)
        data = {"update_id": 51, "message": user._new_message("/start")}
        data["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": 6}]
        with pytest.raises(OperationalError):
            await bot.sim.process(copy.deepcopy(data))  # the webhook answers 503
        assert lost == [51]
        await bot.sim.process(copy.deepcopy(data))  # Telegram delivers it again
        await bot.sim.process(copy.deepcopy(data))  # and once more (its own timeout)
        await bot.app.update_queue.join()  # type: ignore[attr-defined]
        assert len(bot.api.texts_to(USER)) == 1, "answered, once"
        assert (await _inbox(database))[51][0], "and handled"
        assert not bot.app.inbox.store.in_hand, "nothing kept in memory once saved"  # type: ignore[attr-defined]


class _LockConnection:
    """The leadership lock's connection: one answer late by longer than a ping may wait, then on time."""

    def __init__(self) -> None:
        self.slow = 1

    async def fetchval(self, query: str, *args: Any) -> int:
        if self.slow:
            self.slow -= 1
            await asyncio.sleep(1)
        return 1


async def test_a_leader_that_refused_an_update_for_want_of_confirmation_is_fenced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An update comes when the leadership was last confirmed over FENCE_AFTER ago and the confirmation
    asked then comes too late: the update processor is told no and drops the update (and the Bot API
    client drops a reply). Before the fix the process went on leading when the watchdog's next ping
    was answered, and the dropped update waited in the inbox, unanswered, until another leader."""
    monkeypatch.setattr(leader, "PING_TIMEOUT", 0.05)
    lost: list[str] = []
    lead = leader.PostgresLeadership("postgresql+asyncpg://u@127.0.0.1/db", 7, lost.append)
    lead.role = "leader"
    lead._conn = _LockConnection()
    lead._confirmed = time.monotonic() - 2 * lead.fence_after
    assert not await lead.confirm(), "not confirmed: the update is not handled"
    await lead._ping()  # the watchdog's next ping is answered in time
    assert lead.role == "fenced" and lost, "the process stops, so the next leader handles the update"
    assert "was not confirmed" in lost[0]
