"""Benchmark phases of the customer registry: CSV imports (each in its own process, for clean memory
figures) and the identity check against registries of different sizes.

Run as a module, it is the child process of one import:
``python -m unogas_bot.bench.registry_load CSV URL [SCHEMA]`` prints one JSON line with its figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.db import Database
from storage.registry import CustomerRegistry
from unogas_bot.domain import CustomerRecord

SQLITE = "sqlite"


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith("postgresql")


def _asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database(url: str, schema: str | None) -> Database:
    if schema:
        return Database(url, connect_args={"server_settings": {"search_path": schema}})
    return Database(url)


@dataclass(frozen=True)
class Place:
    """Where one benchmark database lives: a SQLite file URL, or a PostgreSQL URL and a schema of its own."""

    url: str
    schema: str | None = None

    def database(self) -> Database:
        return _database(self.url, self.schema)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@asynccontextmanager
async def bench_place(database_url: str | None, workdir: Path, name: str) -> AsyncIterator[Place]:
    """A fresh, empty place for one benchmark database, removed afterwards.

    SQLite (the default): a file in `workdir`. PostgreSQL: a schema `bench_<random>` created for the run
    and dropped at the end, so the server's other users (the test suite) are not disturbed.
    """
    if not is_postgres(database_url):
        path = workdir / f"{name}.db"
        try:
            yield Place(f"sqlite+aiosqlite:///{path}")
        finally:
            _remove_sqlite(path)
        return
    import asyncpg

    assert database_url is not None
    schema = f"bench_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=10)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield Place(database_url, schema)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


# --- imports, one process each ------------------------------------------------------------------------


def _memory_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (high-water mark) of this process, in KiB.

    Not getrusage's ru_maxrss: that survives exec, so a child would report its parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


async def _import_child(csv_path: str, url: str, schema: str | None) -> dict[str, Any]:
    from storage.customer_csv import import_file

    db = _database(url, schema)
    try:
        await db.upgrade()
        registry = CustomerRegistry(db)
        baseline = _memory_kib("VmRSS")
        start = time.perf_counter()
        result = await import_file(csv_path, registry)
        seconds = time.perf_counter() - start
        peak = _memory_kib("VmHWM")
    finally:
        await db.dispose()
    return {
        "rows": result.rows,
        "inserted": result.inserted,
        "seconds": seconds,
        "rows_per_s": result.rows / seconds,
        "baseline_rss_mb": baseline / 1024,
        "peak_rss_mb": peak / 1024,
        # The import's own peak: the process high-water mark above what it held before the import.
        "peak_mem_mb": max(0, peak - baseline) / 1024,
    }


def run_import(csv_path: Path, place: Place) -> dict[str, Any]:
    """Import `csv_path` into `place` in a child process; its figures as a dict."""
    args = [sys.executable, "-m", "unogas_bot.bench.registry_load", str(csv_path), place.url]
    if place.schema:
        args.append(place.schema)
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"import of {csv_path.name} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the identity check -------------------------------------------------------------------------------


def _identity(record: CustomerRecord) -> CustomerRecord:
    return CustomerRecord(
        record.customer_code,
        record.kind,
        record.first_name,
        record.last_name,
        record.company_name,
        record.tax_code,
    )


async def identity_check_seconds(
    places: Sequence[tuple[Place, Sequence[CustomerRecord]]], *, rounds: int = 10, seed: int = 3
) -> list[float]:
    """Average seconds of `registry.match` for existing records, one figure per registry.

    The registries take turns, a slice of look-ups each per round (in alternating order), so a change in
    the machine's load during the measurement weighs on all of them alike.
    """
    dbs = [place.database() for place, _ in places]
    try:
        registries = [CustomerRegistry(db) for db in dbs]
        orders = []
        for index, (_, probes) in enumerate(places):
            order = [_identity(record) for record in probes]
            random.Random(seed + index).shuffle(order)
            orders.append(order)
        for registry, order in zip(registries, orders, strict=True):  # warm-up: connections, caches
            for identity in order[: max(1, len(order) // 20)]:
                await registry.match(identity)
        spent = [0.0] * len(places)
        for turn in range(rounds):
            turns = list(range(len(places)))
            if turn % 2:
                turns.reverse()
            for index in turns:
                order = orders[index]
                chunk = order[turn * len(order) // rounds : (turn + 1) * len(order) // rounds]
                start = time.perf_counter()
                for identity in chunk:
                    if await registries[index].match(identity) is None:
                        raise RuntimeError(f"identity check failed for {identity.customer_code}")
                spent[index] += time.perf_counter() - start
        return [total / len(order) for total, order in zip(spent, orders, strict=True)]
    finally:
        for db in dbs:
            await db.dispose()


def main(argv: Sequence[str]) -> int:
    csv_path, url, *rest = argv
    figures = asyncio.run(_import_child(csv_path, url, rest[0] if rest else None))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
