"""Nothing lost, nothing done twice, under the faults an operator meets (issue 20).

PostgreSQL: two real `unogas-bot run` processes (a leader and a standby) and the stand-in over HTTP; in each
round the same 50 customers, each in the middle of a conversation (registrations, logins, phone changes;
tests/ops/chaoskit.py), take a few steps while one fault hits the leader: kill -9, pg_terminate_backend of
its lock session, its database path black-holed for 5 s (a TCP proxy per process), SIGSTOP for 7 s then
SIGCONT, SIGTERM. Counted from the stand-in's chats and the database, per round: messages never answered
(lost), effects stored twice (applied twice), replies out of order or out of place (went back), and steps
answered twice (repeated). The faulted process is started
again as a standby before the next round, as the service manager would.

SQLite: one `run` process killed with SIGKILL in the middle of a burst, started again: every message is
answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.ops import chaoskit as kit
from tests.ops.processkit import Bot, ProxyThread, new_token, postgres_database, proxied, run_bot, standin
from unogas_bot.bench import data as bench_data
from unogas_bot.bench.failover import StandIn, wait_for

FAULTS = ("kill -9", "pg_terminate_backend", "black hole 5 s", "SIGSTOP 7 s", "SIGTERM")
EXIT_WAIT = 30.0  # seconds a faulted leader may take to stop by itself


class Cluster:
    """Two `run` processes on one database, each through a proxy of its own; either may lead."""

    def __init__(self, workdir: Path, token: str, stand_in: StandIn, urls: dict[str, str]) -> None:
        self.workdir, self.token, self.stand_in, self.urls = workdir, token, stand_in, urls
        self.stack = ExitStack()
        self.bots: dict[str, Bot] = {}
        self.starts = 0

    def start(self, name: str) -> Bot:
        self.starts += 1
        bot = self.stack.enter_context(
            run_bot(self.workdir, f"{name}{self.starts}", self.token, self.stand_in, self.urls[name])
        )
        self.bots[name] = bot
        return bot

    def roles(self) -> tuple[str, str]:
        """(the leader's name, the standby's name), once they are settled."""

        def settled() -> tuple[str, str] | None:
            roles = {name: bot.role() for name, bot in self.bots.items()}
            leaders = [n for n, r in roles.items() if r == "leader"]
            standbys = [n for n, r in roles.items() if r == "standby"]
            return (leaders[0], standbys[0]) if len(leaders) == 1 and len(standbys) == 1 else None

        return wait_for("one leader and one standby", settled, 60)

    def close(self) -> None:
        self.stack.close()


def lock_backend(url: str) -> int:
    """The server process of the session holding the bot's leadership lock (the two-key advisory lock)."""
    sql = (
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND d.datname = current_database()"
    )
    return int(asyncio.run(kit.scalar(url, sql)))


async def inject(fault: str, leader: Bot, proxy: ProxyThread, url: str) -> None:
    """Hit the leader with `fault` (the black hole and SIGSTOP last their seconds, then end)."""
    pid = leader.process.pid
    if fault == "kill -9":
        leader.process.kill()
    elif fault == "pg_terminate_backend":
        backend = await asyncio.to_thread(lock_backend, url)
        await kit.scalar(url, f"SELECT pg_terminate_backend({backend})")
    elif fault == "black hole 5 s":
        proxy.blackhole()
        await asyncio.sleep(5)
        proxy.forward()
    elif fault == "SIGSTOP 7 s":
        os.kill(pid, signal.SIGSTOP)
        await asyncio.sleep(7)
        os.kill(pid, signal.SIGCONT)
    elif fault == "SIGTERM":
        leader.process.send_signal(signal.SIGTERM)
    else:  # pragma: no cover - a typo in FAULTS
        raise ValueError(fault)


@dataclass
class Row:
    fault: str
    lost: int = 0
    applied_twice: int = 0
    went_back: int = 0
    repeated: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"| {self.fault:<20} | {self.lost:>4} | {self.applied_twice:>13} | {self.went_back:>9} "
            f"| {self.repeated:>8} | {self.seconds:5.1f} s |"
        )


HEADER = (
    "| fault                | lost | applied twice | went back | repeated | round   |\n"
    "|----------------------|------|---------------|-----------|----------|---------|"
)


def judge_round(
    row: Row, customers: list[kit.Customer], problems: list[str], before: dict[int, int], known: set[str]
) -> None:
    """Count what this round added (`known`: what earlier rounds counted): steps never answered, replies
    repeated or out of place, and what the database holds beyond (or short of) what was done so far."""

    def new(note: str) -> bool:
        if note in known:
            return False
        known.add(note)
        row.notes.append(note)
        return True

    for c in customers:
        verdict = kit.judge(c)
        tail = f"; the chat's last messages: {[m[:60] for m in c.seen[-4:]]}"
        if not verdict.complete and new(f"lost: {c.kind} {c.user_id} at {c.lost}" + tail):
            row.lost += 1
        if verdict.unexpected and new(
            f"went back: {c.kind} {c.user_id} was told {verdict.unexpected}" + tail
        ):
            row.went_back += 1
        repeated = [i for i in verdict.repeated_steps if i >= before[c.user_id]]
        if len(repeated) > 1:  # one update in flight per customer, so one repeat at most
            row.went_back += new(f"repeated more than once: {c.kind} {c.user_id} steps {repeated}")
        row.repeated += len(repeated)
    for problem in problems:
        if not new(problem):
            continue
        kind = problem.split(":")[0]
        if kind == "applied twice":
            row.applied_twice += 1
        elif kind == "lost":
            row.lost += 1
        else:
            row.went_back += 1


async def quiet(stand_in: StandIn, url: str, old: Bot) -> None:
    """Done: the faulted leader has stopped, Telegram (the stand-in) has nothing unconfirmed, the inbox
    nothing waiting."""
    await asyncio.to_thread(old.process.wait, EXIT_WAIT)

    def drained() -> bool:
        if stand_in.status()["pending_updates"]:
            return False
        sql = "SELECT count(*) FROM bot_inbox WHERE handled_at IS NULL"
        return not asyncio.run(kit.scalar(url, sql))

    await asyncio.to_thread(wait_for, "the updates to be handled", drained, 30, 0.2)


async def play_round(
    index: int,
    fault: str,
    cluster: Cluster,
    proxies: dict[str, ProxyThread],
    url: str,
    customers: list[kit.Customer],
) -> float:
    """The customers take their steps of round `index` while `fault` hits the leader; its seconds."""
    leader_name, _ = cluster.roles()
    leader = cluster.bots[leader_name]
    driver = kit.Driver(cluster.stand_in.root)
    try:
        started = time.monotonic()
        upto = kit.PER_ROUND * (index + 1)
        part = asyncio.ensure_future(driver.play(customers, lambda c: c.warmup + upto, seed=index))
        await driver.reached(10, part)  # under way: every customer is mid-conversation
        await inject(fault, leader, proxies[leader_name], url)
        await part
        await quiet(cluster.stand_in, url, leader)
        await driver.catch_up(customers)  # repeats may come after the customer moved on
        return time.monotonic() - started
    finally:
        await driver.close()


async def warm_up(stand_in: StandIn, customers: list[kit.Customer]) -> None:
    """Everyone to where the first round finds them (registrations staggered), without faults."""
    driver = kit.Driver(stand_in.root)
    try:
        await driver.play(customers, lambda c: c.warmup, seed=99)
        assert not [c.lost for c in customers if c.lost], "before any fault, every step is answered"
    finally:
        await driver.close()


async def last_step(stand_in: StandIn, customers: list[kit.Customer]) -> None:
    """One more step each after the last round, with no fault: where the last round left them is right."""
    driver = kit.Driver(stand_in.root)
    try:
        await driver.play(customers, lambda c: c.done + 1, seed=98)
        await asyncio.sleep(0.3)
        await driver.catch_up(customers)
    finally:
        await driver.close()


REGISTERING, WITH_ACCOUNTS = 20, 30  # 50 customers
RECORDS = bench_data.person_records(REGISTERING + WITH_ACCOUNTS, start=5_000_000, seed=20)


@pytest.mark.postgres
@pytest.mark.slow
def test_fifty_customers_lose_nothing_and_get_nothing_twice_through_every_fault(tmp_path: Path) -> None:
    token = new_token()
    customers = kit.cast(len(FAULTS), RECORDS[:REGISTERING], RECORDS[REGISTERING:])
    with (
        postgres_database() as url,
        standin(token) as stand_in,
        proxied(url) as (url_a, proxy_a),
        proxied(url) as (url_b, proxy_b),
    ):
        asyncio.run(kit.prepare(url, RECORDS[:REGISTERING], RECORDS[REGISTERING:]))
        proxies = {"a": proxy_a, "b": proxy_b}
        cluster = Cluster(tmp_path, token, stand_in, {"a": url_a, "b": url_b})
        rows: list[Row] = []
        known: set[str] = set()
        try:
            cluster.start("a").wait_role("leader")
            cluster.start("b").wait_role("standby")
            asyncio.run(warm_up(stand_in, customers))
            for index, fault in enumerate(FAULTS):
                leader_name, _ = cluster.roles()
                old = cluster.bots[leader_name]
                before = {c.user_id: c.done for c in customers}
                row = Row(fault)
                row.seconds = asyncio.run(play_round(index, fault, cluster, proxies, url, customers))
                judge_round(row, customers, asyncio.run(kit.stored(url, customers)), before, known)
                rows.append(row)
                status = old.process.returncode
                expected = {"kill -9": -signal.SIGKILL, "SIGTERM": 0}.get(fault, 1)
                assert status == expected, f"{fault}: the old leader ended with {status}: {old.log()[-20:]}"
                if fault not in ("kill -9", "SIGTERM"):
                    assert old.logged("fenced:"), old.log()[-20:]
                cluster.start(leader_name).wait_role("standby")
            asyncio.run(last_step(stand_in, customers))
            after_all = Row("(one more step)")
            judge_round(
                after_all,
                customers,
                asyncio.run(kit.stored(url, customers)),
                {c.user_id: c.done - 1 for c in customers},
                known,
            )
        finally:
            cluster.close()
        table = "\n".join([HEADER, *(row.line() for row in rows)])
        print("\n" + table)
        for row in [*rows, after_all]:
            for note in row.notes[:10]:
                print(f"  {row.fault}: {note}")
        assert all(row.lost == 0 for row in rows), table
        assert all(row.applied_twice == 0 for row in rows), table
        assert all(row.went_back == 0 for row in rows), table
        assert rows[-1].repeated == 0, "SIGTERM is an orderly takeover: nothing is answered twice"
        assert (after_all.lost, after_all.applied_twice, after_all.went_back, after_all.repeated) == (
            0,
            0,
            0,
            0,
        )
        saved = sum(1 for c in customers if c.kind == kit.REGISTER and c.effects()["registered"])
        assert saved == REGISTERING, "every registration reached «Salva», some in each round"


# --- SQLite: kill -9 in the middle of a burst ----------------------------------------------------------


BURST = 20  # customers, each sending the first five replies of a registration without waiting


@contextlib.contextmanager
def _killed_mid_burst(tmp_path: Path) -> Iterator[tuple[StandIn, list[kit.Customer], Any]]:
    token = new_token()
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    records = bench_data.person_records(BURST, start=6_000_000, seed=31)
    asyncio.run(kit.prepare(url, records, []))
    customers = [
        kit.Customer(9_000_000 + i, kit.REGISTER, kit.registration(r, "")[:5], 0, r, "", done=5)
        for i, r in enumerate(records)
    ]
    with standin(token) as stand_in:
        yield stand_in, customers, lambda name: run_bot(tmp_path, name, token, stand_in, url)


async def _burst(stand_in: StandIn, customers: list[kit.Customer], bot: Bot) -> int:
    """Every customer types five replies at once; the bot is killed once some are answered: how many."""
    driver = kit.Driver(stand_in.root)
    try:
        for c in customers:  # everything typed at once, in order within each chat (a button's label typed)
            for step in c.steps:
                await driver.act(
                    c, kit.Step("send", step.text.lower() if step.action == "press" else step.text, ())
                )
        # Mid-burst: some replies are out, most are not.
        await asyncio.to_thread(
            wait_for, "the first replies", lambda: _replies(stand_in, customers) >= 15, 60
        )
        bot.process.kill()
        bot.process.wait()
        return _replies(stand_in, customers)
    finally:
        await driver.close()


def _replies(stand_in: StandIn, customers: list[kit.Customer]) -> int:
    return sum(len(stand_in.replies(c.user_id)) for c in customers)


async def _all_answered(stand_in: StandIn, customers: list[kit.Customer]) -> None:
    driver = kit.Driver(stand_in.root)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + kit.STEP_WAIT
        for c in customers:
            while not any(c.steps[-1].markers[-1] in t for t in c.seen) and loop.time() < deadline:
                await driver.read(c, 2.0)
        await asyncio.sleep(0.5)  # anything sent twice comes right behind
        await asyncio.gather(*(driver.read(c, 0) for c in customers))
    finally:
        await driver.close()


def test_a_killed_sqlite_bot_loses_no_update_of_a_burst(tmp_path: Path) -> None:
    with _killed_mid_burst(tmp_path) as (stand_in, customers, start):
        with start("first") as first:
            first.wait_role("leader")
            answered = asyncio.run(_burst(stand_in, customers, first))
        assert answered < BURST * 7, "killed in the middle of the burst"
        with start("second") as second:
            second.wait_role("leader")
            asyncio.run(_all_answered(stand_in, customers))
            assert second.stop() == 0
            assert second.logged("left waiting by the last leader are handled first")
    verdicts = {c.user_id: kit.judge(c) for c in customers}
    lost = [uid for uid, v in verdicts.items() if not v.complete]
    assert not lost, {c.user_id: c.seen for c in customers if c.user_id in lost[:2]}
    assert all(not v.unexpected for v in verdicts.values()), [v.unexpected for v in verdicts.values()]
    assert all(len(v.repeated_steps) <= 1 for v in verdicts.values())
