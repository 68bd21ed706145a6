"""The PostgreSQL leadership (bot/leader.py) on its own: each new leader raises the epoch, and a leader whose
lock session is ended (pg_terminate_backend, as a DBA or a pooler does) stops at once, not after
FENCE_AFTER; one that was only slow to confirm goes on."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage.db import Database
from tests.conftest import POSTGRES_URL, _asyncpg_dsn, _check_postgres
from unogas_bot.bench.failover import create_database, drop_database
from unogas_bot.bot import leader


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    await _check_postgres()
    url = await asyncio.to_thread(create_database, POSTGRES_URL, "lead")
    try:
        db = Database(url)
        await db.upgrade()
        await db.dispose()
        yield url
    finally:
        await asyncio.to_thread(drop_database, POSTGRES_URL, url)


async def _lock_backend(url: str, application: str = "unogas-bot leader lock") -> int:
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                "AND a.application_name = $1 AND a.datname = current_database()",
                application,
            )
        )
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_a_leader_whose_lock_session_is_terminated_stops_at_once(database_url: str) -> None:
    bot_id = 7_000_000 + secrets.randbelow(1_000_000)
    lost: list[tuple[float, str]] = []
    fenced = asyncio.Event()

    def on_lost(why: str) -> None:
        lost.append((time.monotonic(), why))
        fenced.set()

    # A fence timer far longer than the wait below: being fenced within the wait proves it came from the
    # connection's error, not the timer (no bound on elapsed time, which a busy machine could break).
    first = leader.PostgresLeadership(database_url, bot_id, on_lost, fence_after=60.0)
    await first.acquire()
    try:
        assert first.epoch == 1 and first.role == "leader" and await first.may_send()
        backend = await _lock_backend(database_url)
        conn = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=5)
        try:
            ended = time.monotonic()
            await conn.fetchval("SELECT pg_terminate_backend($1)", backend)
        finally:
            await conn.close()
        await asyncio.wait_for(fenced.wait(), 30)
        assert lost[0][0] - ended < 30, "at once, not after the fence timer (60 s here)"
        assert lost[0][1].startswith(f"lost the leadership of bot {bot_id}: ")
        assert "not confirmed" not in lost[0][1], lost[0][1]
        assert first.role == "fenced" and not first.fresh() and not await first.confirm()
        assert not await first.may_send(), "a fenced process sends nothing more"
        await asyncio.sleep(1.5)
        assert len(lost) == 1, "said once"

        second = leader.PostgresLeadership(database_url, bot_id, lambda why: None)
        await asyncio.wait_for(second.acquire(), 10)
        assert second.epoch == 2, "each new leader raises the epoch"
        await second.release()
    finally:
        await first.release()


@pytest.mark.postgres
async def test_a_standby_may_call_telegram_and_a_slow_confirmation_does_not_fence(database_url: str) -> None:
    bot_id = 7_000_000 + secrets.randbelow(1_000_000)
    lost: list[str] = []
    lead = leader.PostgresLeadership(database_url, bot_id, lost.append, ping_every=0.1, fence_after=2.0)
    waiting = leader.PostgresLeadership(database_url, bot_id, lost.append)
    await lead.acquire()
    standing_by = asyncio.ensure_future(waiting.acquire())
    try:
        for _ in range(100):
            if waiting.role == "standby":
                break
            await asyncio.sleep(0.05)
        assert waiting.role == "standby" and await waiting.may_send(), "getMe before leading is fine"
        lead._confirmed -= 5  # confirmed long ago, as after a stall: the next request confirms first
        assert await lead.may_send() and lead.fresh()
        assert not lost
    finally:
        standing_by.cancel()
        await asyncio.gather(standing_by, return_exceptions=True)
        await waiting.release()
        await lead.release()
