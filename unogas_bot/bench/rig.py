"""The benchmark's rig: the real bot on the offline stand-in with a counting hasher and a timed API,
the bcrypt ceiling, and the small helpers the phases share (bench/bot_load.py, bench/stress.py)."""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import bcrypt
from telegram.ext import (
    Application,
    BasePersistence,
)

from storage.db import Database
from storage.inbox import Fence, InboxStore, raise_epoch
from storage.persistence import SqlPersistence
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.runner import freeze_startup_heap
from unogas_bot.bot.wiring import build_application
from unogas_bot.config import Settings
from unogas_bot.offline import OfflineBotAPI, Simulator, offline_builder
from unogas_bot.security import sealing
from unogas_bot.security.hashing import EphemeralMac, Hasher, lower_thread_priority
from unogas_bot.service.context import Services

SAVED = "correttamente salvate"
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """The default progress reporter: says nothing."""


def make_persistence(db: Database) -> BasePersistence:
    """The SQL persistence the bot runs with in production, on the benchmark's database."""
    return SqlPersistence(db)


# --- bcrypt ceiling -----------------------------------------------------------------------------------


def bcrypt_ceiling(rounds: int, workers: int, per_worker: int) -> float:
    """Hashes per second this machine does with `workers` threads busy.

    The pool is shaped like the bot's (as many threads, at the same lowered priority), so other load on
    the machine weighs on the ceiling as it weighs on the bot.
    """
    total = workers * per_worker
    salt = bcrypt.gensalt(rounds)
    with ThreadPoolExecutor(max_workers=workers, initializer=lower_thread_priority) as pool:
        list(pool.map(lambda _: bcrypt.hashpw(b"warm-up", salt), range(workers)))
        start = time.perf_counter()
        list(pool.map(lambda i: bcrypt.hashpw(f"ceiling {i}".encode(), bcrypt.gensalt(rounds)), range(total)))
        elapsed = time.perf_counter() - start
    return total / elapsed


class CountingHasher(Hasher):
    """The bot's Hasher, counting hashes and how many are queued or running (to know when it saturates)."""

    def __init__(self, rounds: int, workers: int) -> None:
        super().__init__(rounds, workers)
        self.workers = max(1, workers)
        self.in_flight = 0
        self.hashes = 0

    @property
    def saturated(self) -> bool:
        return self.in_flight >= self.workers

    async def hash(self, secret: str) -> str:
        self.in_flight += 1
        try:
            return await super().hash(secret)
        finally:
            self.in_flight -= 1
            self.hashes += 1


# --- running the bot offline --------------------------------------------------------------------------


class TimedAPI(OfflineBotAPI):
    """The stand-in, noting when the bot last sent a message to each chat: a reply's latency is the time
    until the customer has it, whatever the bot still does after sending it (e.g. saving its state)."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_at: dict[int, float] = {}

    def call(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        status, answer = super().call(method, params)
        if status == 200 and method.lower() == "sendmessage" and params:
            self.reply_at[int(params["chat_id"])] = time.perf_counter()
        return status, answer


@dataclass
class Rig:
    """A running offline bot: the services, the stand-in server and the simulated users' side."""

    services: Services
    api: TimedAPI
    app: Application
    sim: Simulator
    hasher: CountingHasher
    persistent: bool
    fence: Fence | None = None  # the leadership epoch its writes check (with the inbox, on PostgreSQL)

    def writing(self) -> None:
        """Make the database's writes this rig's: its fence, or none (the other rig's is not checked)."""
        self.services.db.fence = self.fence


@asynccontextmanager
async def bot_rig(settings: Settings, db: Database, *, inbox: bool = True) -> AsyncIterator[Rig]:
    """The bot as `run` builds it, offline: with `inbox` (as `run`) every update is written to the update
    inbox before it is processed, as polling writes it, and saved with its handled mark; without, the
    conversation state is written back every 0.1 s (what the inbox's cost is measured against)."""
    hasher = CountingHasher(settings.bcrypt_rounds, settings.hash_workers)
    services = Services.create(settings, db, hasher=hasher)
    persistence = make_persistence(db)
    api = TimedAPI()
    updates = None
    if inbox:
        secret = secrets.token_bytes(32)  # as INBOX_KEY gives it
        services.mac = EphemeralMac.derived(sealing.digest_key(secret))
        updates = Inbox(InboxStore(db, api.bot_user["id"]), sealing.Sealer(secret))
    app = build_application(services, builder=offline_builder(api), persistence=persistence, inbox=updates)
    fence = None
    if inbox and db.dialect == "postgresql":
        # As the leader of `run` writes: every transaction checks the leadership epoch it raised.
        fence = Fence(api.bot_user["id"], await raise_epoch(db, api.bot_user["id"]))
        db.fence = fence
    try:
        async with Simulator(app, api, first_update_id=_next_update_id()) as sim:
            if updates is not None:
                sim.admit = updates.take
            freeze_startup_heap()  # as `unogas-bot run` does once the bot has started
            yield Rig(services, api, app, sim, hasher, persistence is not None, fence)
    finally:
        hasher.close()
        if fence is not None and db.fence is fence:
            db.fence = None


_RIGS = itertools.count()


def _next_update_id() -> int:
    """Update ids no earlier rig of this run used (rigs of one run share a database and a bot id)."""
    return 1 + 10_000_000 * next(_RIGS)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
