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

The phases live in bot_load.py (the bot), registry_load.py (the registry) and failover.py (leader and
standby); data.py makes the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
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

from storage.registry import CustomerRecord, CustomerRegistry
from unogas_bot.bench import bot_load as bench_bot
from unogas_bot.bench import data as bench_data
from unogas_bot.bench import events_load as bench_events
from unogas_bot.bench import failover as bench_failover
from unogas_bot.bench import registry_load as bench_registry
from unogas_bot.config import Settings

# The acceptance bar.
TARGETS: dict[str, tuple[str, float, str]] = {
    # key: (comparison, limit, what it means)
    "ceiling_ratio": (">=", 0.85, "registrations/s vs the bcrypt ceiling (2 hashes per registration)"),
    "nonhash_p99_ms": ("<=", 50.0, "p99 of non-hashing replies while hashing saturates the cores"),
    "cpu_per_update_vs_floor": ("<=", 3.0, "CPU per non-hashing update vs the framework floor"),
    "bytes_per_conversation": ("<=", 20 * 1024, "memory per in-flight conversation"),
    # Absolute, as issue 12 asks: what a customer notices while another chat floods the bot.
    "flood_other_p99_ms": ("<=", 250.0, "p99 of other chats' non-hashing replies during one chat's flood"),
    "import_rows_per_s": (">=", 50_000, "CSV import rows/s (1,000,000 rows)"),
    "import_peak_mem_ratio": ("<=", 1.5, "import peak memory, 1,000,000 rows vs 100,000"),
    "identity_check_ratio": ("<=", 2.0, "identity check time, 1,000,000 records vs 10,000"),
}
# Targets only a run on PostgreSQL measures (on SQLite the row says why not, and nothing is missed).
POSTGRES_TARGETS: dict[str, tuple[str, float, str]] = {
    "failover_seconds": ("<=", 2.0, "median s from kill -9 of the leader to the standby's first reply"),
}
# The events phase's targets (issue 24), measured where a RabbitMQ answers at AMQP_URL (else: why not).
EVENTS_TARGETS: dict[str, tuple[str, float, str]] = {
    "events_drain_per_s": (">=", 2_000.0, "account events/s drained from a backlog to the broker"),
    "cpu_per_update_vs_floor_relay": ("<=", 3.0, "CPU per non-hashing update vs the floor, relay on"),
}
ALL_TARGETS = TARGETS | POSTGRES_TARGETS | EVENTS_TARGETS


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
    before = bench_bot.bcrypt_ceiling(sizes.bcrypt_rounds, workers, sizes.ceiling_per_worker)

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
            async with bench_bot.bot_rig(settings, db) as rig:
                out["persistence"] = rig.persistent
                report(f"registration load: {sizes.customers} customers")
                load = await bench_bot.registration_load(
                    rig, load_customers, arrival_rate=sizes.arrival_factor * before / 2, progress=report
                )
                after = bench_bot.bcrypt_ceiling(sizes.bcrypt_rounds, workers, sizes.ceiling_per_worker)
                accounts = await rig.services.accounts.count()
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
                async with bench_bot.bot_rig(settings, db, inbox=False) as plain:
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
                memory = await bench_bot.draft_memory(rig, sizes.drafts, first_user=30_000_000)
                report(f"flood: {sizes.flood_messages:,} messages from one chat, {sizes.flood_others} others")
                flood = await bench_bot.flood(
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
        "nonhash_p50_ms": bench_bot.percentile(samples, 50),
        "nonhash_p95_ms": bench_bot.percentile(samples, 95),
        "nonhash_p99_ms": bench_bot.percentile(samples, 99),
        "nonhash_samples_saturated": len(load.latencies_ms),
        "nonhash_samples_all": len(load.all_latencies_ms),
        "nonhash_p99_ms_all": bench_bot.percentile(load.all_latencies_ms, 99),
        "nonhash_update_p50_ms": bench_bot.percentile(load.update_ms, 50),
        "nonhash_update_p99_ms": bench_bot.percentile(load.update_ms, 99),
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
        "flood_other_p50_ms": bench_bot.percentile(flood.other_latencies_ms, 50),
        "flood_other_p99_ms": bench_bot.percentile(flood.other_latencies_ms, 99),
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


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def table(figures: dict[str, Any]) -> str:
    """The human-readable summary."""
    rows: list[tuple[str, str, str]] = []

    def add(label: str, key: str, unit: str = "", target: str | None = None) -> None:
        if key not in figures:
            return
        value = figures[key]
        shown = (f"{value:,}" if isinstance(value, int) else _fmt(value)) + (f" {unit}" if unit else "")
        verdict = ""
        if target is not None:
            met = figures["targets"][target]["met"]
            comparison, limit, _ = ALL_TARGETS[target]
            verdict = f"{'ok  ' if met else 'MISS'} ({comparison} {_fmt(limit)})"
        rows.append((label, shown, verdict))

    add("framework floor", "floor_updates_per_s", "updates/s")
    add("registrations", "registrations_per_s", "/s")
    add("bcrypt ceiling (2 hashes each)", "bcrypt_ceiling_registrations_per_s", "registrations/s")
    add("  ratio to the ceiling", "ceiling_ratio", "", "ceiling_ratio")
    add("non-hashing replies p50", "nonhash_p50_ms", "ms")
    add("non-hashing replies p95", "nonhash_p95_ms", "ms")
    add("non-hashing replies p99", "nonhash_p99_ms", "ms", "nonhash_p99_ms")
    add("  same updates until state saved, p99", "nonhash_update_p99_ms", "ms")
    add("CPU per update: floor", "floor_cpu_ms_per_update", "ms")
    add("CPU per update: registration", "nonhash_cpu_ms_per_update", "ms")
    add("  ratio to the floor", "cpu_per_update_vs_floor", "", "cpu_per_update_vs_floor")
    add("  without the update inbox", "nonhash_cpu_ms_per_update_without_inbox", "ms")
    add("  the inbox's cost per update", "inbox_cpu_ms_per_update", "ms")
    add("peak memory (RSS, after the load)", "peak_rss_mb", "MB")
    add("memory per in-flight conversation", "bytes_per_conversation", "bytes", "bytes_per_conversation")
    add("flood: other chats' replies p50", "flood_other_p50_ms", "ms")
    add("flood: other chats' replies p99", "flood_other_p99_ms", "ms", "flood_other_p99_ms")
    add("  flood updates processed", "flood_processed")
    add("  flood updates dropped", "flood_dropped")
    add("  bcrypt hashes of the flooding chat", "flood_hashes")
    add("import, small file", "import_rows_per_s_small", "rows/s")
    add("import, large file", "import_rows_per_s", "rows/s", "import_rows_per_s")
    add("import peak memory, small", "import_peak_mem_mb_small", "MB")
    add("import peak memory, large", "import_peak_mem_mb_large", "MB")
    add("  ratio large/small", "import_peak_mem_ratio", "", "import_peak_mem_ratio")
    add("identity check, small registry", "identity_check_ms_small", "ms")
    add("identity check, large registry", "identity_check_ms_large", "ms")
    add("  ratio large/small", "identity_check_ratio", "", "identity_check_ratio")
    rounds = len(figures.get("failover_round_seconds", ()))
    add(f"failover (kill -9), median of {rounds}", "failover_seconds", "s", "failover_seconds")
    add("  slowest round", "failover_max_seconds", "s")
    if "failover_skipped" in figures:  # SQLite, or no right to create the phase's database
        rows.append(("failover (kill -9)", "n/a", f"({figures['failover_skipped']})"))
    add("events: backlog drained to RabbitMQ", "events_drain_per_s", "events/s", "events_drain_per_s")
    add("  CPU per event published", "events_cpu_ms_per_event", "ms")
    add("  CPU per update, relay on", "events_cpu_ms_per_update_relay_on", "ms")
    add("  CPU per update, relay off", "events_cpu_ms_per_update_relay_off", "ms")
    add(
        "  ratio to the floor, relay on", "cpu_per_update_vs_floor_relay", "", "cpu_per_update_vs_floor_relay"
    )
    if "events_skipped" in figures:
        rows.append(("events (RabbitMQ)", "n/a", f"({figures['events_skipped']})"))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = [f"{label:<{width}}  {value:>{vwidth}}  {verdict}".rstrip() for label, value, verdict in rows]
    sizes, mach = figures["sizes"], figures["machine"]
    lines.append(
        f"sizes: {sizes['customers']} customers, {sizes['drafts']:,} drafts, imports of "
        f"{sizes['import_small']:,} and {sizes['import_large']:,} rows, "
        f"bcrypt cost {sizes['bcrypt_rounds']}, a flood of {sizes.get('flood_messages', 0):,} messages at "
        f"{sizes.get('flood_rate', 0):,.0f}/s; "
        f"database: {figures['database']}" + ("" if figures.get("persistence", True) else " (no persistence)")
    )
    lines.append(f"machine: {mach['cores']} cores, Python {mach['python']}, {mach['platform']}")
    return "\n".join(lines)


def write_json(figures: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def missed(figures: dict[str, Any]) -> list[str]:
    """The targets a run did not meet (empty: all met)."""
    return [key for key, target in figures["targets"].items() if not target["met"]]


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
