"""Benchmark phases that run the bot itself: the framework floor, the registration load and CPU per update.
They drive the real Application through the offline stand-in (bench/rig.py), the way polling would (updates
go through the application's update processor). The flood and memory phases are bench/stress.py."""

from __future__ import annotations

import asyncio
import gc
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from unogas_bot.bench import data as bench_data
from unogas_bot.bench.rig import SAVED, Progress, Rig, _quiet
from unogas_bot.bot.update_processor import PerChatUpdateProcessor
from unogas_bot.domain import CustomerRecord
from unogas_bot.offline import OfflineBotAPI, Sent, Simulator, SimUser, offline_builder

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
