"""A database that stops answering: the customer is told to retry within a bounded time, the conversation is
kept, `/annulla` is not stuck behind the dead query, and everything works again once the database answers.

On PostgreSQL the bot talks to the server through a loopback TCP proxy that can black-hole the connections
already open (and new ones): nothing is closed, nothing comes back, as when the server or the network path
goes silent. On SQLite another connection holds the database's write lock. The bot runs with short timeouts
(the production ones are 10 s per statement, 5 s for a pooled connection or the write turn); the bound
asserted here is those timeouts plus a loaded machine's slack.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from storage.db import Database
from tests.conftest import POSTGRES_URL, FakeClock, _asyncpg_dsn, _check_postgres
from tests.kit.botkit import (
    ANSWER,
    MARIO,
    PASSWORD,
    QUESTION,
    Bot,
    answer_all,
    last_text,
    running_bot,
    texts_of,
)
from tests.kit.botkit import SEED_SENTENCE as SAVED
from tests.kit.stores import stores
from tests.kit.tcpproxy import TcpProxy
from unogas_bot.i18n import texts
from unogas_bot.offline import Sent, SimUser, render_text

TIMEOUT = 1.0  # statement, pool and connect timeouts of the bot under test, in seconds
# The longest a reply may take while the database is silent: a statement's timeout (plus the driver's
# half-second grace on PostgreSQL), with slack for a busy machine. Without the timeouts it never comes.
BOUND = 4.0
EMAIL = "mario.rossi@example.it"


def plain(key: str, **params: Any) -> str:
    return render_text(texts.t("it", key, **params), "HTML")


def draft(bot: Bot, user_id: int = 1001) -> dict[str, Any]:
    return bot.app.user_data[user_id]["registration"]


async def timed(action: Any) -> tuple[list[object], float]:
    """Run a user action; its events and the seconds it took (failing, not hanging, past twice the bound)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await asyncio.wait_for(action, 2 * BOUND)
    return events, loop.time() - started


async def at_summary(user: SimUser) -> None:
    await user.send("/registrati")
    await user.send("continua")
    await user.send(MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", EMAIL)
    events = await answer_all(user, PASSWORD, PASSWORD, QUESTION, ANSWER, ANSWER)
    assert "Salva" in [label for e in events if isinstance(e, Sent) for label in e.buttons], texts_of(events)


async def save_and_cancel_while_stuck(bot: Bot, user: SimUser) -> None:
    """Press Salva while the database is silent and send /annulla right after: both are answered within
    the bound (Salva with "try again shortly", /annulla with "cancelled") and nothing is saved."""
    loop = asyncio.get_running_loop()
    sent_before = len(bot.api.events)
    save = asyncio.create_task(timed(user.press("Salva")))
    await asyncio.sleep(0.1)  # the save is waiting on the database now
    cancel_sent = loop.time()
    _, cancel_took = await timed(user.send("/annulla"))
    _, save_took = await save
    replies = [e.plain_text for e in bot.api.events[sent_before:] if isinstance(e, Sent)]
    assert replies == [plain("db_unavailable"), plain("cancelled")]
    assert TIMEOUT * 0.9 <= save_took <= BOUND, f"the save was answered after {save_took:.2f} s"
    assert cancel_took <= BOUND, f"/annulla was answered {loop.time() - cancel_sent:.2f} s after it was sent"
    assert "registration" not in bot.app.user_data.get(1001, {})


# --- PostgreSQL, through a proxy that black-holes the open connections ------------------------------------


@asynccontextmanager
async def proxied_postgres() -> AsyncIterator[tuple[TcpProxy, Database]]:
    """A fresh schema on the test server, reached through a TcpProxy, with the short timeouts."""
    await _check_postgres()
    import asyncpg

    target = make_url(POSTGRES_URL)
    schema = f"t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        async with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            db = Database(
                url,
                statement_timeout=TIMEOUT,
                pool_timeout=TIMEOUT,
                connect_timeout=TIMEOUT,
                connect_args={"server_settings": {"search_path": schema}},
            )
            try:
                await db.upgrade()
                yield proxy, db
            finally:
                proxy.forward()
                await db.dispose()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest.mark.postgres
async def test_a_silent_postgres_gets_a_retry_reply_in_bounded_time_and_keeps_the_conversation(
    clock: FakeClock,
) -> None:
    async with proxied_postgres() as (proxy, db), running_bot(db, clock) as bot:
        user = bot.user(1001)
        await user.send("/registrati")
        await user.send("continua")
        await user.send(MARIO["code"])
        await user.press("Persona")
        events = await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta")
        assert plain("q_email") in last_text(events), "the identity check went through the proxy"

        proxy.blackhole()  # every open connection goes silent, and new ones get no answer either
        for _ in range(2):  # the first on a pooled connection, the next on whatever the pool has left
            events, took = await timed(user.send(EMAIL))  # is the e-mail taken? no answer
            assert texts_of(events) == [plain("db_unavailable")]
            assert TIMEOUT * 0.9 <= took <= BOUND, f"answered after {took:.2f} s"
            assert draft(bot)["_at"] == "email" and "email" not in draft(bot), "the question is kept"
            assert draft(bot)["first_name"] == MARIO["first"], "and the answers so far"

        proxy.forward()
        events, took = await timed(user.send(EMAIL))  # the same reply, once the database answers again
        assert plain("q_password") in last_text(events)
        assert took <= BOUND, f"answered after {took:.2f} s"

        await answer_all(user, PASSWORD, PASSWORD, QUESTION, ANSWER, ANSWER)
        proxy.blackhole()
        await save_and_cancel_while_stuck(bot, user)
        proxy.forward()

        assert await stores(bot.services).accounts.count() == 0
        await at_summary(user)
        assert SAVED in last_text(await user.press("Salva"))
        assert await stores(bot.services).accounts.count() == 1


# --- SQLite, with the write lock held by another connection ------------------------------------------------


@asynccontextmanager
async def write_lock_held(path: Path) -> AsyncIterator[None]:
    """Another connection (as another process would) holds SQLite's write lock until the block ends."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_locked_sqlite_database_gets_a_retry_reply_in_bounded_time(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "t.db"
    db = Database(f"sqlite+aiosqlite:///{path}", statement_timeout=TIMEOUT, pool_timeout=TIMEOUT)
    try:
        await db.upgrade()
        async with running_bot(db, clock) as bot:
            user = bot.user(1001)
            await at_summary(user)
            async with write_lock_held(path):
                await save_and_cancel_while_stuck(bot, user)
            assert await stores(bot.services).accounts.count() == 0
            await at_summary(user)
            assert SAVED in last_text(await user.press("Salva"))
            assert await stores(bot.services).accounts.count() == 1
    finally:
        await db.dispose()


async def test_writers_queued_in_the_process_give_up_after_the_pool_timeout(tmp_path: Path) -> None:
    """A write waiting for this process's write turn (behind a stuck writer) fails after `pool_timeout`
    as unavailable, instead of queueing behind it without end."""
    from sqlalchemy import text

    from storage.db import database_unavailable

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 't.db'}", statement_timeout=TIMEOUT, pool_timeout=0.3)
    try:
        await db.upgrade()
        release = asyncio.Event()

        async def stuck_writer() -> None:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))
                await release.wait()

        holder = asyncio.create_task(stuck_writer())
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def write() -> None:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))

        with pytest.raises(Exception) as caught:
            await asyncio.wait_for(write(), 5)  # without a bound the write would wait for the stuck one
        assert database_unavailable(caught.value) and not isinstance(caught.value, asyncio.TimeoutError)
        assert 0.25 <= loop.time() - started <= 2.0
        release.set()
        await holder
        async with db.transaction() as session:  # the turn is free again
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_statement_the_server_cancels_for_time_is_unavailable_but_bulk_work_has_no_limit() -> None:
    """A live server cancels a statement after `statement_timeout` (SQLSTATE 57014): the customer is told
    to retry, as for a silent server; an import or a migration runs on the engine without the limit."""
    from sqlalchemy import text

    from storage.db import database_unavailable

    await _check_postgres()
    db = Database(POSTGRES_URL, statement_timeout=0.3)
    try:
        with pytest.raises(Exception) as caught:
            async with db.read() as conn:
                await conn.execute(text("SELECT pg_sleep(2)"))
        assert database_unavailable(caught.value)
        assert getattr(getattr(caught.value, "orig", None), "sqlstate", None) == "57014"
        async with db.transaction(bulk=True) as session:
            await session.execute(text("SELECT pg_sleep(0.5)"))
            assert (await session.execute(text("SHOW statement_timeout"))).scalar() == "0"
    finally:
        await db.dispose()
