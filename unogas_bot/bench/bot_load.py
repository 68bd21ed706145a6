"""Benchmark phases that run the bot itself: the framework floor, the registration load, CPU per update and
memory per in-flight conversation. All of them drive the real Application through the offline stand-in,
the way polling would (updates go through the application's update processor)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import random
import resource
import secrets
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import bcrypt
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    BasePersistence,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from storage.db import Database
from storage.inbox import Fence, InboxStore, raise_epoch
from storage.persistence import SqlPersistence
from unogas_bot.bench import data as bench_data
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.runner import freeze_startup_heap
from unogas_bot.bot.update_processor import PerChatUpdateProcessor
from unogas_bot.bot.wiring import build_application
from unogas_bot.config import Settings
from unogas_bot.domain import CustomerRecord
from unogas_bot.i18n import texts
from unogas_bot.offline import OfflineBotAPI, Sent, Simulator, SimUser, offline_builder
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


# --- 1. the framework floor ---------------------------------------------------------------------------

FLOOR_QUESTIONS = ("Come si chiama?", "Di che città è?", "Qual è il suo colore preferito?")


def floor_application(api: OfflineBotAPI) -> Application:
    """The same offline Application and update processor with a trivial three-question echo conversation."""
    app = offline_builder(api).concurrent_updates(PerChatUpdateProcessor()).build()

    async def ask(update: Update, step: int, echo: str | None) -> int:
        said = f"Ha scritto: <b>{echo}</b>\n" if echo else ""
        await update.get_bot().send_message(
            update.effective_chat.id,
            f"{said}<b>Domanda {step + 1}</b>\n{FLOOR_QUESTIONS[step]}",
            ParseMode.HTML,
        )
        return step

    async def start(update: Update, _: Any) -> int:
        return await ask(update, 0, None)

    def answer(step: int) -> Callable[[Update, Any], Any]:
        async def handle(update: Update, _: Any) -> int:
            text = update.effective_message.text or ""
            if step + 1 == len(FLOOR_QUESTIONS):
                await update.get_bot().send_message(
                    update.effective_chat.id, f"Grazie: <b>{text}</b>", "HTML"
                )
                return ConversationHandler.END
            return await ask(update, step + 1, text)

        return handle

    text = filters.TEXT & ~filters.COMMAND
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states={i: [MessageHandler(text, answer(i))] for i in range(len(FLOOR_QUESTIONS))},
            fallbacks=[],
        )
    )
    return app


@dataclass
class Rate:
    updates: int
    seconds: float
    cpu_seconds: float

    @property
    def per_s(self) -> float:
        return self.updates / self.seconds

    @property
    def cpu_per_update(self) -> float:
        return self.cpu_seconds / self.updates

    def __add__(self, other: Rate) -> Rate:
        return Rate(
            self.updates + other.updates, self.seconds + other.seconds, self.cpu_seconds + other.cpu_seconds
        )


async def _timed(work: Callable[[], Any]) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def floor(users: int, rounds: int) -> Rate:
    """Updates per second (and CPU per update) of the echo conversation, `users` chats at once."""
    api = OfflineBotAPI()
    app = floor_application(api)
    async with Simulator(app, api) as sim:
        people = [sim.user(500_000 + i) for i in range(users)]

        async def one(user: SimUser) -> None:
            for r in range(rounds):
                await user.send("/start")
                for q in range(len(FLOOR_QUESTIONS)):
                    await user.send(f"risposta {q} del giro {r}")

        await asyncio.gather(*(one(p) for p in people[: max(1, users // 10)]))  # warm-up
        seconds, cpu = await _timed(lambda: asyncio.gather(*(one(p) for p in people)))
    return Rate(users * rounds * (1 + len(FLOOR_QUESTIONS)), seconds, cpu)


# --- 2. registrations -----------------------------------------------------------------------------------

PLAIN, HASH, SAVE = "plain", "hash", "save"


@dataclass(frozen=True)
class Step:
    action: str  # "send" or "press"
    text: str
    kind: str = PLAIN  # PLAIN: no bcrypt involved; HASH: a confirmation that hashes; SAVE: the Salva


def registration_steps(record: CustomerRecord, index: int) -> list[Step]:
    """Everything one customer types to register, as in the support page's piped console example."""
    phone = "salta" if index % 2 else f"347 {index % 1000:03d} {index % 10_000:04d}"
    return [
        Step("send", "/registrati"),
        Step("press", "Continua"),  # the privacy notice
        Step("send", record.customer_code),
        Step("press", "Persona"),
        Step("send", record.first_name or ""),
        Step("send", record.last_name or ""),
        Step("send", record.tax_code),
        Step("send", phone),  # then the registry check
        Step("send", f"cliente.{index}@example.it"),
        Step("send", bench_data.PASSWORD),  # the first entry is only a keyed digest: no bcrypt
        Step("send", bench_data.PASSWORD, HASH),
        Step("send", bench_data.QUESTION),
        Step("send", bench_data.ANSWER),
        Step("send", bench_data.ANSWER, HASH),
        Step("press", "Salva", SAVE),
    ]


NONHASH_PREFIX = 10  # the steps before the first hash, up to the password's first entry (a keyed digest)


async def _do(user: SimUser, step: Step) -> list[object]:
    return await (user.send(step.text) if step.action == "send" else user.press(step.text))


@dataclass
class LoadResult:
    customers: int
    saved: int
    seconds: float
    hashes: int
    latencies_ms: list[float]  # non-hashing replies while every hash worker was busy
    all_latencies_ms: list[float]  # every non-hashing reply
    update_ms: list[float]  # every non-hashing update, until fully processed (its state saved)
    peak_rss_mb: float
    failures: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.saved / self.seconds


async def registration_load(
    rig: Rig,
    customers: Sequence[CustomerRecord],
    *,
    arrival_rate: float,
    think_ms: tuple[float, float] = (5.0, 60.0),
    seed: int = 11,
    progress: Progress = _quiet,
) -> LoadResult:
    """Each customer is a task: arrives (Poisson, `arrival_rate` per second), then registers with short
    random pauses between replies, so conversations interleave as in real traffic."""
    rng = random.Random(seed)
    arrivals, at = [], 0.0
    for _ in customers:
        arrivals.append(at)
        at += rng.expovariate(arrival_rate)
    latencies: list[float] = []
    saturated: list[float] = []
    updates: list[float] = []  # until the update is fully processed (state saved too)
    failures: list[str] = []
    saved = 0
    start = time.perf_counter()

    async def one(index: int, record: CustomerRecord, pause: random.Random) -> None:
        nonlocal saved
        await asyncio.sleep(arrivals[index])
        user = rig.sim.user(10_000_000 + index)
        events: list[object] = []
        try:
            for step in registration_steps(record, index):
                await asyncio.sleep(pause.uniform(*think_ms) / 1000)
                busy = rig.hasher.saturated
                t0 = time.perf_counter()
                events = await _do(user, step)
                if step.kind == PLAIN:
                    done = time.perf_counter()
                    replied = rig.api.reply_at.get(user.chat_id, done)
                    ms = ((replied if replied >= t0 else done) - t0) * 1000
                    latencies.append(ms)
                    updates.append((done - t0) * 1000)
                    if busy and rig.hasher.saturated:
                        saturated.append(ms)
        except LookupError as exc:  # a button that was not there: the conversation went elsewhere
            failures.append(f"{record.customer_code}: {exc}")
            return
        texts = [e.plain_text for e in events if isinstance(e, Sent)]
        if texts and SAVED in texts[-1]:
            saved += 1
            if saved % 10 == 0:
                progress(
                    f"registration load: {saved}/{len(customers)} saved, {time.perf_counter() - start:.0f} s"
                )
        else:
            failures.append(f"{record.customer_code}: last reply {texts[-1:]!r}")

    seeds = [random.Random(seed * 1_000_003 + i) for i in range(len(customers))]
    await asyncio.gather(*(one(i, c, seeds[i]) for i, c in enumerate(customers)))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return LoadResult(
        len(customers), saved, seconds, rig.hasher.hashes, saturated, latencies, updates, peak, failures
    )


async def nonhash_cpu(rig: Rig, customers: Sequence[CustomerRecord], *, first_user: int) -> Rate:
    """CPU time per update over a phase of only non-hashing updates: each customer answers up to the
    first password entry (identity check and e-mail look-up included), all customers at once."""
    users = [rig.sim.user(first_user + i) for i in range(len(customers))]

    async def one(user: SimUser, record: CustomerRecord, index: int) -> None:
        for step in registration_steps(record, index)[:NONHASH_PREFIX]:
            await _do(user, step)

    seconds, cpu = await _timed(
        lambda: asyncio.gather(
            *(one(u, c, first_user + i) for i, (u, c) in enumerate(zip(users, customers, strict=True)))
        )
    )
    if rig.hasher.in_flight:
        raise RuntimeError("a hash ran during the non-hashing phase")
    return Rate(len(customers) * NONHASH_PREFIX, seconds, cpu)


# --- a flood from one chat -------------------------------------------------------------------------------

FLOOD_CYCLE = (bench_data.PASSWORD, bench_data.PASSWORD, "/indietro")  # the attack: a hash each time
OTHER_STEPS = NONHASH_PREFIX - 1  # other chats answer a registration up to the e-mail (identity check), then
# /annulla, over and over: replies that involve no hashing


@dataclass
class FloodResult:
    messages: int
    seconds: float  # from the first flood message until the flood's last update was processed or dropped
    other_latencies_ms: list[float]  # every reply to the other chats while the flood went on
    dropped: int
    notices: int  # "slow down" messages the flooding chat received
    flood_hashes: int  # bcrypt hashes the flooding chat caused
    processed: int  # flood updates processed (not dropped)


async def flood(
    rig: Rig,
    flooder_record: CustomerRecord,
    other_records: Sequence[CustomerRecord],
    *,
    messages: int,
    rate: float,
    first_user: int,
    think_ms: tuple[float, float] = (50.0, 150.0),
    seed: int = 17,
) -> FloodResult:
    """One chat sends `messages` messages at `rate` per second ([password, password, /indietro] at the
    password question) while other chats keep answering registration questions; the latency of every reply
    the other chats get meanwhile is what counts."""
    processor = rig.app.update_processor
    if not isinstance(processor, PerChatUpdateProcessor):
        raise TypeError("the bot runs without its per-chat update processor")
    flooder = rig.sim.user(first_user)
    for step in registration_steps(flooder_record, first_user)[:OTHER_STEPS]:
        await _do(flooder, step)  # now at the password question
    notice = texts.t("it", "slow_down")
    dropped, hashes, said = processor.dropped, rig.hasher.hashes, len(flooder.replies)
    latencies: list[float] = []
    flooding = True

    async def other(index: int, record: CustomerRecord, pause: random.Random) -> None:
        user = rig.sim.user(first_user + 1 + index)
        steps = [*registration_steps(record, first_user + 1 + index)[:OTHER_STEPS], Step("send", "/annulla")]
        while flooding:
            for step in steps:
                await asyncio.sleep(pause.uniform(*think_ms) / 1000)
                t0 = time.perf_counter()
                await _do(user, step)
                done = time.perf_counter()
                replied = rig.api.reply_at.get(user.chat_id, done)
                if flooding:
                    latencies.append(((replied if replied >= t0 else done) - t0) * 1000)

    async def send_flood() -> None:
        # Delivered in batches every 10 ms, as polling hands over what arrived meanwhile.
        batch = max(1, round(rate / 100))
        sent: list[asyncio.Task[object]] = []
        started = time.perf_counter()
        for first in range(0, messages, batch):
            delay = started + first / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for i in range(first, min(messages, first + batch)):
                sent.append(asyncio.create_task(flooder.send(FLOOD_CYCLE[i % len(FLOOD_CYCLE)])))
        await asyncio.gather(*sent)

    rngs = [random.Random(seed * 1_000_003 + i) for i in range(len(other_records))]
    others = [asyncio.create_task(other(i, r, rngs[i])) for i, r in enumerate(other_records)]
    start = time.perf_counter()
    try:
        await send_flood()
    finally:
        seconds = time.perf_counter() - start
        flooding = False
        await asyncio.gather(*others)
    notices = sum(1 for sent in flooder.replies[said:] if sent.plain_text == notice)
    dropped = processor.dropped - dropped
    return FloodResult(
        messages, seconds, latencies, dropped, notices, rig.hasher.hashes - hashes, messages - dropped
    )


# --- memory per in-flight conversation --------------------------------------------------------------------


def _forget_server_side(api: OfflineBotAPI) -> None:
    """Drop what the stand-in stores about chats (it plays Telegram's servers: not the bot's memory)."""
    keep = {"_handlers", "_commands", "bot_user", "_faults"}
    for name, value in vars(api).items():
        if name not in keep and isinstance(value, list | dict | set):
            value.clear()


@dataclass
class MemoryResult:
    drafts: int  # drafts open at the end
    traced: int  # the last `traced` drafts were opened under tracemalloc
    bot_bytes: int  # retained by the bot (and persistence) for the traced drafts
    with_server_bytes: int  # the same plus what the stand-in server keeps for those chats

    @property
    def per_conversation(self) -> float:
        return self.bot_bytes / self.traced


async def _no_flush() -> None:
    """Stands in for SqlPersistence.flush while the untraced drafts are opened."""


async def _open_drafts(rig: Rig, first: int, count: int, first_user: int, wave: int) -> None:
    async def one(user: SimUser, index: int) -> None:
        await user.send("/registrati")
        await user.send("continua")
        await user.send(bench_data.customer_code(9_000_000 + index))
        await user.press("Persona")
        await user.send("Maria")

    for begin in range(first, first + count, wave):
        stop = min(first + count, begin + wave)
        await asyncio.gather(*(one(rig.sim.user(first_user + i), i) for i in range(begin, stop)))


async def draft_memory(
    rig: Rig, drafts: int, *, first_user: int, traced: int = 500, wave: int = 1_000
) -> MemoryResult:
    """Open `drafts` registrations answered up to the first name and measure what stays allocated per
    draft. tracemalloc slows Python down several times, so only the last `traced` drafts are opened under
    it: their retained memory, with `drafts` open, is the marginal cost of one more conversation."""
    traced = min(traced, drafts)
    persistence = rig.app.persistence
    if isinstance(persistence, SqlPersistence):
        # Filling: the persistence notes every change as usual but writes them in one flush at the end,
        # not one commit per update. The memory left behind is the same; only the filling is faster.
        persistence.flush = _no_flush  # type: ignore[method-assign]
    try:
        await _open_drafts(rig, 0, drafts - traced, first_user, wave)
    finally:
        if isinstance(persistence, SqlPersistence):
            del persistence.flush
            await persistence.flush()
    _forget_server_side(rig.api)
    gc.collect()
    tracemalloc.start(1)
    try:
        await _open_drafts(rig, drafts - traced, traced, first_user, wave)
        # Write back what the last updates noted, as the application does within a tenth of a second:
        # changes waiting for that write are a passing buffer, not memory a conversation keeps. Measured
        # without it, the figure swung between about 2,400 and 5,000 bytes with the write's timing.
        await rig.app.update_persistence()
        gc.collect()
        with_server = tracemalloc.get_traced_memory()[0]
        _forget_server_side(rig.api)
        gc.collect()
        bot = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    drafts_open = sum(1 for data in rig.app.user_data.values() if data.get("registration"))
    if drafts_open < drafts:
        raise RuntimeError(f"only {drafts_open} of {drafts} drafts are open")
    return MemoryResult(drafts_open, traced, bot, with_server)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
