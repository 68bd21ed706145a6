"""The benchmark's failover phase (unogas_bot/bench/failover.py): one round on the local PostgreSQL (two real
`run` processes, kill -9 of the leader) gives a positive figure with its target; on SQLite the row says why
there is none, and --check has nothing to miss."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, _check_postgres
from unogas_bot.bench import benchmark as bench
from unogas_bot.bench import failover
from unogas_bot.bench.failover import asyncpg_dsn


def _exists(database: str) -> bool:
    import asyncpg

    async def go() -> bool:
        conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", database))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.mark.postgres
def test_one_failover_round_on_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_check_postgres())  # skipped, with the reason, when the server does not answer
    # The database the phase makes, by name: other runs on the same server make and drop their own.
    made: list[str] = []
    create = failover.create_database

    def recorded(server_url: str, prefix: str) -> str:
        url = create(server_url, prefix)
        made.append(str(make_url(url).database))
        return url

    monkeypatch.setattr(failover, "create_database", recorded)
    figures = bench.run(bench.Sizes.smoke(), database_url=POSTGRES_URL, progress=False, phases=("failover",))
    assert figures["failover_seconds"] > 0
    assert figures["failover_max_seconds"] == figures["failover_seconds"]  # one round
    assert len(figures["failover_round_seconds"]) == 1
    target = figures["targets"]["failover_seconds"]
    assert target["limit"] == 2.0 and target["comparison"] == "<=" and isinstance(target["met"], bool)
    assert "failover (kill -9), median of 1" in bench.table(figures)
    assert len(made) == 1 and made[0].startswith("unogas_bench_"), made
    assert not _exists(made[0]), "the phase's database is dropped"


def test_on_sqlite_the_row_says_postgresql_only() -> None:
    figures = bench.run(bench.Sizes.smoke(), progress=False, phases=("failover",))
    assert "failover_seconds" not in figures and "failover_seconds" not in figures["targets"]
    assert bench.missed(figures) == []
    row = next(line for line in bench.table(figures).splitlines() if line.startswith("failover"))
    assert row.endswith("n/a  (PostgreSQL only)"), row
