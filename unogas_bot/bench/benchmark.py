"""`unogas-bot bench`: proves the bot is never the bottleneck.

In one process and one run it measures, each against a limit that is a ratio within the same run:

1. the framework floor: PTB + the offline stand-in with a trivial echo conversation (updates per second);
2. the registration load: N distinct registry customers registering at once through the real conversations
   and storage (the update inbox and the persistence included) at bcrypt cost 12, against the bcrypt
   ceiling of this machine; latency of the replies that involve no hashing while hashing saturates the
   cores; CPU per non-hashing update against the floor's, and the update inbox's share of it (the same
   phase again without the inbox); memory per in-flight conversation;
3. the registry at scale: CSV imports of 100,000 and 1,000,000 rows (rows per second, peak memory) and the
   identity check against 10,000 and 1,000,000 records;
4. a flood from one chat (1,000 messages, bcrypt cost 12): the latency of other chats' replies meanwhile,
   against an absolute limit (issue 12: what a customer notices while someone else floods the bot);
5. on PostgreSQL only, the failover time: from kill -9 of the leader of two real `run` processes to the
   first reply from the standby (issue 16), against an absolute limit.

The phases live in bot_load.py and stress.py (the bot, on rig.py), registry_load.py (the registry) and
failover.py (leader and standby); data.py makes the data; report.py prints the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.account_store import AccountStore
from storage.registry import CustomerRegistry
from unogas_bot.bench import bot_load as bench_bot
from unogas_bot.bench import data as bench_data
from unogas_bot.bench import events_load as bench_events
from unogas_bot.bench import failover as bench_failover
from unogas_bot.bench import registry_load as bench_registry
from unogas_bot.bench import rig as bench_rig
from unogas_bot.bench import stress as bench_stress
from unogas_bot.bench.report import ALL_TARGETS, missed, table, write_json
from unogas_bot.config import Settings
from unogas_bot.domain import CustomerRecord


@dataclass(frozen=True)
class Sizes:
    customers: int = 200  # registrations under load
    floor_users: int = 200
    floor_rounds: int = 5
    cpu_users: int = 300  # customers in the non-hashing CPU phase
    drafts: int = 10_000  # in-flight conversations for the memory figure
    ceiling_per_worker: int = 6  # bcrypt hashes per core for the ceiling
    import_small: int = 100_000
    import_large: int = 1_000_000
    registry_small: int = 10_000
    lookups: int = 2_000
    bcrypt_rounds: int = 12
    arrival_factor: float = 3.0  # customers arrive this much faster than the ceiling can register them
    flood_messages: int = 1_000  # one chat's flood: [password, password, /indietro] over and over
    flood_rate: float = 200.0  # flood messages per second (a script, not a person)
    flood_others: int = 10  # chats answering questions meanwhile, 50-150 ms between replies
    failover_rounds: int = 7  # PostgreSQL only: leader + standby started, the leader killed, timed
    events_backlog: int = 100_000  # account events drained to the broker (issue 24)
    events_cpu_users: int = 300  # customers per turn of the CPU phase with the relay on and off

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            customers=30,
            floor_users=100,
            floor_rounds=3,
            cpu_users=100,
            drafts=1_000,
            ceiling_per_worker=2,
            import_small=10_000,
            import_large=100_000,
            registry_small=1_000,
            lookups=500,
            failover_rounds=3,
            events_backlog=20_000,
            events_cpu_users=100,
        )

    @classmethod
    def smoke(cls) -> Sizes:
        """Tiny sizes for the test suite: checks that everything runs, not how fast."""
        return cls(
            customers=5,
            floor_users=5,
            floor_rounds=1,
            cpu_users=5,
            drafts=20,
            ceiling_per_worker=1,
            import_small=200,
            import_large=400,
            registry_small=100,
            lookups=20,
            bcrypt_rounds=4,
            flood_messages=60,
            flood_rate=100.0,
            flood_others=2,
            failover_rounds=1,
            events_backlog=300,
            events_cpu_users=5,
        )


class Reporter:
    """One progress line on stderr, rewritten in place on a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        line = f"[bench {time.perf_counter() - self.start:6.1f} s] {message}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def _met(key: str, value: float) -> bool:
    comparison, limit, _ = ALL_TARGETS[key]
    return value >= limit if comparison == ">=" else value <= limit


async def _bot_phases(
    sizes: Sizes, database_url: str | None, workdir: Path, report: Reporter
) -> dict[str, Any]:
    workers = os.cpu_count() or 1
    settings = Settings(bcrypt_rounds=sizes.bcrypt_rounds, hash_workers=workers)
    out: dict[str, Any] = {}

    report(f"bcrypt ceiling ({workers} threads, cost {sizes.bcrypt_rounds})")
    before = bench_rig.bcrypt_ceiling(sizes.bcrypt_rounds, workers, sizes.ceiling_per_worker)

    cpu_count = 4 * sizes.cpu_users + 2 * max(1, sizes.cpu_users // 10)  # four turns and two warm-ups
    customers = bench_data.person_records(
        sizes.customers + cpu_count + 1 + sizes.flood_others, start=1_000_000
    )
    load_customers = customers[: sizes.customers]
    cpu_customers = customers[sizes.customers : sizes.customers + cpu_count]
    flood_customers = customers[sizes.customers + cpu_count :]
    async with bench_registry.bench_place(database_url, workdir, "bot") as place:
        db = place.database()
        try:
            await db.upgrade()
            await CustomerRegistry(db).upsert_many(customers)
            async with bench_rig.bot_rig(settings, db) as rig:
                out["persistence"] = rig.persistent
                report(f"registration load: {sizes.customers} customers")
                load = await bench_bot.registration_load(
                    rig, load_customers, arrival_rate=sizes.arrival_factor * before / 2, progress=report
                )
                after = bench_rig.bcrypt_ceiling(sizes.bcrypt_rounds, workers, sizes.ceiling_per_worker)
                accounts = await AccountStore(rig.services.db).count()
                if load.failures or accounts != sizes.customers:
                    failed = load.failures[:3]
                    raise RuntimeError(
                        f"{accounts} of {sizes.customers} registrations saved; first: {failed}"
                    )
                # The floor and the bot's non-hashing updates are measured back to back, in the same
                # process state, so that a change in the machine's load moves both alike.
                report("framework floor")
                floor = await bench_bot.floor(sizes.floor_users, sizes.floor_rounds)
                out["floor_updates_per_s"] = floor.per_s
                out["floor_cpu_ms_per_update"] = floor.cpu_per_update * 1000
                report("CPU per non-hashing update, with the update inbox and without it in turns")
                writes = getattr(rig.app.persistence, "writes", 0)
                # The bot as `run` has it (A), and the same without the inbox (B: the conversation state
                # written back every 0.1 s), in the order A B B A, so that a drift in the machine's load
                # weighs on both alike; every turn has its own customers, all at once.
                size = sizes.cpu_users
                turns: list[bench_bot.Rate] = []
                async with bench_rig.bot_rig(settings, db, inbox=False) as plain:
                    warm = max(1, size // 10)  # each bot's first updates of the kind, not measured
                    for i, bot in enumerate((rig, plain)):
                        bot.writing()
                        first = 4 * size + i * warm
                        group = cpu_customers[first : first + warm]
                        await bench_bot.nonhash_cpu(bot, group, first_user=20_000_000 + first)
                    for turn, bot in enumerate((rig, plain, plain, rig)):
                        group = cpu_customers[turn * size : (turn + 1) * size]
                        bot.writing()
                        turns.append(
                            await bench_bot.nonhash_cpu(bot, group, first_user=20_000_000 + turn * size)
                        )
                rig.writing()
                out["cpu_turns_ms"] = [round(t.cpu_per_update * 1000, 3) for t in turns]
                cpu, without = turns[0] + turns[3], turns[1] + turns[2]
                # Commits of conversation state with the inbox (each update is saved with its mark;
                # updates finishing together share a commit).
                out["nonhash_persistence_commits"] = getattr(rig.app.persistence, "writes", 0) - writes
                report(f"memory: {sizes.drafts} drafts in flight")
                memory = await bench_stress.draft_memory(rig, sizes.drafts, first_user=30_000_000)
                report(f"flood: {sizes.flood_messages:,} messages from one chat, {sizes.flood_others} others")
                flood = await bench_stress.flood(
                    rig,
                    flood_customers[0],
                    flood_customers[1:],
                    messages=sizes.flood_messages,
                    rate=sizes.flood_rate,
                    first_user=40_000_000,
                )
        finally:
            await db.dispose()

    hash_rate = (before + after) / 2
    ceiling = hash_rate / 2  # two bcrypt hashes per registration (password and answer)
    samples = load.latencies_ms or load.all_latencies_ms
    out |= {
        "registrations_per_s": load.per_s,
        "registration_seconds": load.seconds,
        "bcrypt_hashes_per_s": hash_rate,
        "bcrypt_hashes_per_s_before": before,
        "bcrypt_hashes_per_s_after": after,
        "bcrypt_hashes_per_registration": load.hashes / load.saved,
        "bcrypt_ceiling_registrations_per_s": ceiling,
        "ceiling_ratio": load.per_s / ceiling,
        "nonhash_p50_ms": bench_rig.percentile(samples, 50),
        "nonhash_p95_ms": bench_rig.percentile(samples, 95),
        "nonhash_p99_ms": bench_rig.percentile(samples, 99),
        "nonhash_samples_saturated": len(load.latencies_ms),
        "nonhash_samples_all": len(load.all_latencies_ms),
        "nonhash_p99_ms_all": bench_rig.percentile(load.all_latencies_ms, 99),
        "nonhash_update_p50_ms": bench_rig.percentile(load.update_ms, 50),
        "nonhash_update_p99_ms": bench_rig.percentile(load.update_ms, 99),
        "peak_rss_mb": load.peak_rss_mb,
        "accounts_saved": accounts,
        "nonhash_updates_per_s": cpu.per_s,
        "nonhash_cpu_ms_per_update": cpu.cpu_per_update * 1000,
        "cpu_per_update_vs_floor": cpu.cpu_per_update / floor.cpu_per_update,
        "nonhash_cpu_ms_per_update_without_inbox": without.cpu_per_update * 1000,
        "inbox_cpu_ms_per_update": (cpu.cpu_per_update - without.cpu_per_update) * 1000,
        "bytes_per_conversation": memory.per_conversation,
        "bytes_per_conversation_with_server": memory.with_server_bytes / memory.traced,
        "drafts_open": memory.drafts,
        "drafts_traced": memory.traced,
        "flood_other_p50_ms": bench_rig.percentile(flood.other_latencies_ms, 50),
        "flood_other_p99_ms": bench_rig.percentile(flood.other_latencies_ms, 99),
        "flood_other_max_ms": max(flood.other_latencies_ms, default=0.0),
        "flood_other_replies": len(flood.other_latencies_ms),
        "flood_seconds": flood.seconds,
        "flood_dropped": flood.dropped,
        "flood_processed": flood.processed,
        "flood_notices": flood.notices,
        "flood_hashes": flood.flood_hashes,
    }
    return out


async def _registry_phases(
    sizes: Sizes, database_url: str | None, workdir: Path, report: Reporter
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    imports: dict[str, Any] = {}
    kept: dict[int, bench_registry.Place] = {}  # the registries the identity check runs against
    async with contextlib.AsyncExitStack() as stack:
        for rows in dict.fromkeys((sizes.registry_small, sizes.import_small, sizes.import_large)):
            report(f"registry: writing a CSV of {rows:,} rows")
            csv_path = bench_data.write_csv(workdir / f"customers-{rows}.csv", rows)
            place = await stack.enter_async_context(
                bench_registry.bench_place(database_url, workdir, f"registry-{rows}")
            )
            report(f"registry: importing {rows:,} rows (own process)")
            imports[str(rows)] = bench_registry.run_import(csv_path, place)
            csv_path.unlink()
            if rows in (sizes.registry_small, sizes.import_large):
                kept[rows] = place
        report(
            f"registry: {sizes.lookups:,} identity checks against {sizes.registry_small:,} "
            f"and {sizes.import_large:,} records"
        )
        small_s, large_s = await bench_registry.identity_check_seconds(
            [
                (kept[rows], _probes(rows, sizes.lookups))
                for rows in (sizes.registry_small, sizes.import_large)
            ]
        )
    lookup_seconds = {sizes.registry_small: small_s, sizes.import_large: large_s}
    small, large = imports[str(sizes.import_small)], imports[str(sizes.import_large)]
    out["imports"] = imports
    out["import_rows_per_s"] = large["rows_per_s"]
    out["import_rows_per_s_small"] = small["rows_per_s"]
    out["import_peak_mem_mb_small"] = small["peak_mem_mb"]
    out["import_peak_mem_mb_large"] = large["peak_mem_mb"]
    out["import_peak_mem_ratio"] = large["peak_mem_mb"] / max(small["peak_mem_mb"], 1 / 1024)
    out["identity_check_ms_small"] = lookup_seconds[sizes.registry_small] * 1000
    out["identity_check_ms_large"] = lookup_seconds[sizes.import_large] * 1000
    out["identity_check_ratio"] = lookup_seconds[sizes.import_large] / lookup_seconds[sizes.registry_small]
    return out


def _probes(rows: int, count: int) -> list[CustomerRecord]:
    """Existing records of a registry imported from `write_csv(rows)`, picked at random."""
    people = bench_data.identities(min(bench_data.CSV_POOL, rows))
    picked = random.Random(rows).sample(range(rows), min(count, rows))
    return [
        CustomerRecord(bench_data.customer_code(i), *dataclasses.astuple(people[i % len(people)]))
        for i in picked
    ]


def run(
    sizes: Sizes,
    *,
    database_url: str | None = None,
    progress: bool = True,
    phases: tuple[str, ...] = ("bot", "registry", "failover", "events"),
) -> dict[str, Any]:
    """Run the benchmark; the figures as a JSON-ready dict (with `targets`)."""
    report = Reporter(progress)
    figures: dict[str, Any] = {
        "database": "postgresql" if bench_registry.is_postgres(database_url) else "sqlite",
        "sizes": dataclasses.asdict(sizes),
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory(prefix="unogas-bench-") as tmp:
        workdir = Path(tmp)
        if "bot" in phases:
            figures |= asyncio.run(_bot_phases(sizes, database_url, workdir, report))
        if "registry" in phases:
            figures |= asyncio.run(_registry_phases(sizes, database_url, workdir, report))
        if "failover" in phases:
            figures |= bench_failover.failover(database_url, sizes.failover_rounds, workdir, report)
        if "events" in phases:
            settings = Settings(bcrypt_rounds=sizes.bcrypt_rounds, hash_workers=os.cpu_count() or 1)
            figures |= asyncio.run(
                bench_events.events_phases(
                    settings, sizes.events_backlog, sizes.events_cpu_users, database_url, workdir, report
                )
            )
    report("done")
    report.done()
    figures["seconds"] = time.perf_counter() - report.start
    figures["targets"] = {
        key: {"value": figures[key], "limit": limit, "comparison": comparison, "met": _met(key, figures[key])}
        for key, (comparison, limit, _) in ALL_TARGETS.items()
        if key in figures
    }
    return figures


def main(quick: bool, database_url: str | None, json_path: str | None, customers: int | None,
         out: Callable[[str], None] = print, check: bool = False) -> int:  # fmt: skip
    """Run, print the table (and write the JSON); with `check`, exit status 1 when a target is missed, so a
    CI job or a release script can stop on a regression."""
    sizes = Sizes.quick() if quick else Sizes()
    if customers is not None:
        sizes = dataclasses.replace(sizes, customers=customers)
    figures = run(sizes, database_url=database_url)
    out(table(figures))
    if json_path:
        write_json(figures, json_path)
    failed = missed(figures)
    if check and failed:
        sys.stderr.write(f"bench: targets missed: {', '.join(failed)}\n")
        return 1
    return 0
