"""Benchmark phases that stress one part: a flood of hashes from one chat while others register, and the
memory one in-flight conversation holds."""

from __future__ import annotations

import asyncio
import gc
import random
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

from storage.persistence import SqlPersistence
from unogas_bot.bench import data as bench_data
from unogas_bot.bench.bot_load import NONHASH_PREFIX, Step, _do, registration_steps
from unogas_bot.bench.rig import Rig
from unogas_bot.bot.update_processor import PerChatUpdateProcessor
from unogas_bot.domain import CustomerRecord
from unogas_bot.i18n import texts
from unogas_bot.offline import OfflineBotAPI, SimUser

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
