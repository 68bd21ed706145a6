"""Housekeeping: the hourly job deletes outdated attempts and expired sessions, the minutely one abandoned
drafts, and nothing still in use."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from storage.db import Database
from storage.inbox import Arrived
from storage.models import Attempt, BotConversation, BotUserData, TelegramSession
from tests.conftest import FakeClock
from tests.kit.accountkit import WRONG_PASSWORD, alerts_settled, login, registered
from tests.kit.botkit import ANSWER, MARIO, PASSWORD, QUESTION, Bot, answer_all, last_text, running_bot
from tests.kit.hardkit import open_conversations
from tests.kit.stores import stores
from unogas_bot.bot import housekeeping
from unogas_bot.domain.keys import telegram_key
from unogas_bot.i18n import texts
from unogas_bot.offline import SimUser, render_text
from unogas_bot.service.limits import LOGIN_USER_FAILED as USER_FAILED


async def _rows(bot: Bot, model: type) -> int:
    async with bot.services.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(model))).scalar_one()


async def test_the_hourly_job_deletes_old_attempts_and_expired_sessions(bot: Bot, clock: FakeClock) -> None:
    (job,) = bot.app.job_queue.get_jobs_by_name("housekeeping")  # type: ignore[attr-defined]
    assert job.job.trigger.interval == housekeeping.INTERVAL

    mario = await registered(bot)
    await login(mario)  # a session of 30 days
    stranger = bot.user(2001)
    await login(stranger, password=WRONG_PASSWORD)  # attempts recorded now
    await alerts_settled()  # the owner told of it: one attempt more
    old_attempts = await _rows(bot, Attempt)
    assert old_attempts > 0 and await _rows(bot, TelegramSession) == 1

    clock.advance(timedelta(days=31))  # the session has expired, the attempts are a month old
    await login(stranger, password=WRONG_PASSWORD)  # fresh attempts, inside their windows
    await alerts_settled()
    fresh_attempts = await _rows(bot, Attempt) - old_attempts

    await job.run(bot.app)  # as the job queue runs it

    assert await _rows(bot, TelegramSession) == 0
    assert await _rows(bot, Attempt) == fresh_attempts
    assert (
        await stores(bot.services).attempts.count_since(USER_FAILED, telegram_key(2001), timedelta(hours=1))
        == 1
    )


def test_attempts_are_kept_longer_than_any_window_they_are_counted_in(bot: Bot) -> None:
    settings = bot.services.settings
    kept = housekeeping.attempts_kept(bot.services)
    assert kept >= timedelta(days=1)
    assert kept >= max(
        settings.limits.login_user_window,
        settings.limits.login_failures_window,
        settings.limits.recovery_lock,
    )


# --- abandoned drafts ---------------------------------------------------------------------------------------

ABANDONED = range(5000, 5200)  # 200 customers who stop answering somewhere in a form
TRACES = (
    MARIO["code"],
    MARIO["tax"],
    MARIO["last"],
    "mario.rossi@example.it",
    "$2b$",
    "3471234567",
    "_touched",
)
LANGUAGE_USER = 8001  # abandons a draft too, but chose English: that choice stays
FRESH_USER = 9001  # starts a registration after the others went quiet: kept
EMAIL = "mario.rossi@example.it"


def plain(key: str, **params: Any) -> str:
    return render_text(texts.t("it", key, **params), "HTML")


async def abandon_a_draft(user: SimUser, depth: int) -> None:
    """A draft left at one of five places: just started, after the identity, after the e-mail, after the
    password pair (its bcrypt hash is in the draft), or a login with the e-mail typed."""
    if depth == 4:
        await answer_all(user, "/accedi", EMAIL)
        return
    await user.send("/registrati")
    await user.send("continua")
    if depth == 0:
        return
    await user.send(MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "347 123 4567")
    if depth >= 2:
        await user.send(EMAIL)
    if depth >= 3:
        events = await answer_all(user, PASSWORD, PASSWORD)
        assert plain("q_question") in last_text(events)


async def _table(db: Database, model: type) -> list[tuple[Any, ...]]:
    async with db.session() as session:
        return [tuple(row) for row in await session.execute(select(model.__table__))]


def drafts_in(app: Any) -> dict[int, set[str]]:
    """Who has a draft in memory, and of which forms (values with a `_touched` time)."""
    out = {
        uid: {k for k, v in data.items() if isinstance(v, dict) and "_touched" in v}
        for uid, data in app.user_data.items()
    }
    return {uid: forms for uid, forms in out.items() if forms}


async def test_abandoned_drafts_are_purged_from_memory_and_tables_and_a_restart_loads_none(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        app: Any = bot.app
        jobs = app.job_queue.jobs()
        assert min(job.job.trigger.interval for job in jobs) <= timedelta(minutes=5), "drafts go often"
        for user_id in ABANDONED:
            await abandon_a_draft(bot.user(user_id), user_id % 5)
        with_hash = [u for u in ABANDONED if "password_hash" in app.user_data[u].get("registration", {})]
        assert len(with_hash) == 40, "some drafts hold a bcrypt hash"
        await answer_all(bot.user(LANGUAGE_USER), "/registrati", "continua", MARIO["code"])
        app.user_data[LANGUAGE_USER]["lang"] = "en"  # as /lingua leaves it
        await app.update_persistence()
        assert len(await _table(database, BotConversation)) == 201, "every draft was saved, as in production"

        clock.advance(bot.services.settings.limits.conversation_timeout + timedelta(minutes=1))
        await bot.user(FRESH_USER).send("/registrati")
        await bot.user(FRESH_USER).send("continua")
        for job in jobs:  # every housekeeping job, as the job queue runs it
            await job.run(app)

        # In memory: nothing of the abandoned drafts, neither the data nor PTB's conversation state (what
        # may stay of such a user is a flag without their data, e.g. the secret-message guard's).
        assert drafts_in(app) == {FRESH_USER: {"registration"}}
        leftovers = json.dumps([app.user_data.get(user_id) for user_id in ABANDONED])
        assert not [trace for trace in TRACES if trace in leftovers]
        assert dict(app.user_data[LANGUAGE_USER]) == {"lang": "en"}
        assert open_conversations(app) == {
            "registration": {(FRESH_USER, FRESH_USER): "customer_code"},
            "login": {},
            "recovery": {},
            **{name: {} for name in ("change_password", "change_email", "change_phone", "change_question")},
            "export": {},
            "erase": {},
        }
        # In the tables: the same, and no trace of what the drafts held.
        users = {user_id: data for user_id, data, *_ in await _table(database, BotUserData)}
        assert users[LANGUAGE_USER] == '{"lang":"en"}'
        assert "_touched" in users.pop(FRESH_USER)
        stored = " ".join(users.values())
        assert not [trace for trace in TRACES if trace in stored]
        conversations = [(name, key) for name, key, *_ in await _table(database, BotConversation)]
        assert conversations == [("registration", f"[{FRESH_USER},{FRESH_USER}]")]

    async with running_bot(database, clock, demo=False) as restarted:
        app = restarted.app
        assert drafts_in(app) == {FRESH_USER: {"registration"}}, "a restart loads none of them"
        assert open_conversations(app)["registration"] == {(FRESH_USER, FRESH_USER): "customer_code"}
        # A customer who comes back is answered as a new one; the fresh draft goes on.
        events = await restarted.user(ABANDONED[1]).send(MARIO["first"])
        assert last_text(events) == plain("welcome")
        events = await restarted.user(FRESH_USER).send(MARIO["code"])
        assert plain("q_kind") in last_text(events)

        # The guard's flag of those left at a password question goes after a day, from the tables too.
        assert any("_secret" in data for data in restarted.app.user_data.values())
        clock.advance(days=1, minutes=1)
        await housekeeping.purge_drafts(restarted.app)
        assert not any("_secret" in data for data in restarted.app.user_data.values())
        users = {user_id: data for user_id, data, *_ in await _table(database, BotUserData)}
        assert not any("_secret" in data for data in users.values())


async def test_a_draft_within_the_timeout_is_kept(bot: Bot, clock: FakeClock) -> None:
    user = bot.user(1001)
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    clock.advance(bot.services.settings.limits.conversation_timeout - timedelta(seconds=1))
    assert await housekeeping.purge_drafts(bot.app) == 0
    assert bot.app.user_data[1001]["registration"]["customer_code"] == MARIO["code"]
    events = await user.press("Persona")
    assert plain("q_first_name") in last_text(events)
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", EMAIL, PASSWORD, PASSWORD)
    events = await answer_all(user, QUESTION, ANSWER, ANSWER)
    assert "Salva" in [label for e in events for label in getattr(e, "buttons", [])]


async def test_the_hourly_job_forgets_handled_updates_and_updates_waiting_for_a_day(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock, inbox=bytes(32)) as bot:
        await bot.user(1001).send("/start")  # handled: its tombstone stays until Telegram confirms it
        store = bot.app.inbox.store  # type: ignore[attr-defined]
        await store.admit([Arrived(99, 1001, b"sealed")])  # one nobody handled
        (job,) = bot.app.job_queue.get_jobs_by_name("housekeeping")  # type: ignore[attr-defined]
        await job.run(bot.app)
        assert await store.counts() == (1, 1), "nothing old enough yet"
        clock.advance(housekeeping.TOMBSTONES_KEPT + timedelta(seconds=1))
        await job.run(bot.app)
        assert await store.counts() == (1, 0)
        clock.advance(housekeeping.WAITING_KEPT)
        await job.run(bot.app)
        assert await store.counts() == (0, 0)
