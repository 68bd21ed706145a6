"""Benchmark phase: the failover time on PostgreSQL, with real processes.

Each round starts the HTTP stand-in (`unogas-bot standin serve --port 0`) and two `unogas-bot run`
processes on one token and one database, waits until one leads (it polls) and the other stands by, has a
customer send a message and get the reply, kills the leader with SIGKILL, has the customer send another
message and times from the kill to the first reply, which only the standby can give.

`run` is configured by its environment alone, and DATABASE_URL cannot name a schema, so the phase works in
a database of its own, `unogas_bench_<random>` on the --database URL's server, created for the phase and
dropped at the end (advisory locks are per database too, so nothing else on the server is disturbed). When
the role lacks the CREATEDB privilege the phase is skipped with the reason.

The process driver (StandIn, Bot, standin, run_bot, the scratch database) is shared with the ops tests
(tests/ops/processkit.py): every wait has a deadline, and the processes are driven over loopback HTTP only.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import make_url

T = TypeVar("T")

REPLY_WAIT = 30.0  # seconds a round waits for a reply before it gives up
ROLES_WAIT = 60.0  # seconds two fresh processes may take to settle as leader and standby
USER = 4242  # the customer of every round
NOT_POSTGRES = "PostgreSQL only"


# --- the process driver -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], T | None], seconds: float, every: float = 0.05) -> T:
    """`check()` until it returns something other than None/False, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(every)


def new_token() -> str:
    """A token of a bot of its own (its id keys the leadership), so runs never share a lock."""
    return f"{7_000_000 + secrets.randbelow(1_000_000)}:TEST-{secrets.token_hex(16)}"


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without the bot's own settings, bcrypt at the cheapest cost, and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "LOG_", "TELEGRAM_"))}
    return {**env, "BCRYPT_ROUNDS": "4", **extra}


@dataclass
class StandIn:
    """The running `unogas-bot standin serve` and the users it plays."""

    process: subprocess.Popen[str]
    api_url: str  # TELEGRAM_API_BASE_URL
    root: str
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def send(self, user_id: int, text: str) -> None:
        answer = self.client.post(f"{self.root}/standin/users/{user_id}/send", json={"text": text})
        assert answer.status_code == 200, answer.text

    def press(self, user_id: int, label: str) -> None:
        answer = self.client.post(f"{self.root}/standin/users/{user_id}/press", json={"button": label})
        assert answer.status_code == 200, answer.text

    def replies(self, user_id: int, after: int = 0, wait: float = 0) -> list[dict[str, Any]]:
        url = f"{self.root}/standin/users/{user_id}/replies"
        answer = self.client.get(url, params={"after": after, "wait": wait}, timeout=wait + 10)
        return list(answer.json()["replies"])

    def status(self) -> dict[str, Any]:
        return dict(self.client.get(f"{self.root}/standin/status").json())

    def say(self, user_id: int, text: str, *, press: bool = False, wait: float = 10) -> str:
        """Send (or press) and return the text of the bot's first new message, waiting up to `wait` s;
        later messages of the same reply are given a moment to arrive, and the last one is returned."""
        before = len(self.replies(user_id))
        (self.press if press else self.send)(user_id, text)
        new = self.replies(user_id, before, wait)
        assert new, f"no reply to {text!r} within {wait} s"
        time.sleep(0.15)  # a step may answer with two messages
        return str(self.replies(user_id, before)[-1]["text"])


@contextmanager
def standin(token: str) -> Iterator[StandIn]:
    """`unogas-bot standin serve --port 0` for `token`; its first line names the URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "standin", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env({"TELEGRAM_BOT_TOKEN": token}),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("TELEGRAM_API_BASE_URL=http://127.0.0.1:"), line
        api_url = line.partition("=")[2]
        stand_in = StandIn(process, api_url, api_url.removesuffix("/bot"))
        yield stand_in
        stand_in.client.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@dataclass
class Bot:
    """A running `unogas-bot run`, its log (a file, read as it grows) and its health port."""

    process: subprocess.Popen[str]
    log_path: Path
    metrics_port: int
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def log(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.log())

    def get(self, path: str) -> httpx.Response | None:
        try:
            return self.client.get(f"http://127.0.0.1:{self.metrics_port}{path}")
        except httpx.TransportError:
            return None

    def ready(self) -> dict[str, Any] | None:
        answer = self.get("/readyz")
        return None if answer is None else {"status": answer.status_code, **answer.json()}

    def role(self) -> str | None:
        """ "leader", "standby", or None while it starts."""
        self.check_alive()
        state = self.ready()
        return None if state is None else str(state["role"])

    def wait_role(self, role: str, seconds: float = 30) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            self.check_alive()
            state = self.ready()
            return state if state is not None and state["role"] == role else None

        return wait_for(f"the bot's role to be {role}", check, seconds)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"the bot ended with {self.process.returncode}:\n" + "\n".join(self.log()))

    def metric(self, name: str) -> float:
        answer = self.get("/metrics")
        assert answer is not None and answer.status_code == 200
        for line in answer.text.splitlines():
            if line.split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} not in /metrics")

    def stop(self, seconds: float = 20) -> int:
        """SIGTERM, and the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=seconds)


@contextmanager
def run_bot(
    workdir: Path, name: str, token: str, stand_in: StandIn, database_url: str, **env: str
) -> Iterator[Bot]:
    """`unogas-bot run` against the stand-in, with its health port; killed at the end if still running."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "run"],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        text=True,
        env=child_env(
            {
                "TELEGRAM_BOT_TOKEN": token,
                "TELEGRAM_API_BASE_URL": stand_in.api_url,
                "DATABASE_URL": database_url,
                "METRICS_PORT": str(port),
                **env,
            }
        ),
    )
    bot = Bot(process, log_path, port)
    try:
        yield bot
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log_file.close()
        bot.client.close()


# --- a scratch database -------------------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(server_url), timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


def create_database(server_url: str, prefix: str) -> str:
    """A new, empty database `<prefix>_<random>` on `server_url`'s server; its URL. Raises what the server
    or the driver raises (unreachable, no CREATEDB privilege)."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    _admin(server_url, f"CREATE DATABASE {name}")
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    """Drop the database `create_database` made (its sessions, if any are left, are ended)."""
    _admin(server_url, f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


# --- the phase ----------------------------------------------------------------------------------------


def _tail(bot: Bot, lines: int = 15) -> str:
    return "\n".join(bot.log()[-lines:])


def one_round(database_url: str, workdir: Path, index: int) -> float:
    """Seconds from the leader's SIGKILL to the customer's first reply from the standby."""
    token = new_token()
    with (
        standin(token) as stand_in,
        run_bot(workdir, f"round{index}-a", token, stand_in, database_url) as a,
        run_bot(workdir, f"round{index}-b", token, stand_in, database_url) as b,
    ):

        def settled() -> tuple[Bot, Bot] | None:
            roles = {a.role(), b.role()}
            if roles != {"leader", "standby"}:
                return None
            return (a, b) if a.role() == "leader" else (b, a)

        leader, standby = wait_for("one leader and one standby", settled, ROLES_WAIT)
        stand_in.say(USER, "/start", wait=REPLY_WAIT)  # the leader answers
        before = len(stand_in.replies(USER))
        leader.process.kill()  # SIGKILL: no goodbye, the lock goes with the session
        killed = time.monotonic()
        leader.process.wait()
        stand_in.send(USER, "/start")
        while not stand_in.replies(USER, before, wait=1.0):
            standby.check_alive()
            if time.monotonic() - killed > REPLY_WAIT:
                raise RuntimeError(
                    f"failover: no reply {REPLY_WAIT:g} s after kill -9 of the leader; the standby's log:\n"
                    + _tail(standby)
                )
        took = time.monotonic() - killed
        standby.stop()
    return took


def failover(
    database_url: str | None, rounds: int, workdir: Path, report: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """The phase's figures: `failover_seconds` (the median) and `failover_max_seconds`, or
    `failover_skipped` with the reason."""
    if not database_url or not database_url.startswith("postgresql"):
        return {"failover_skipped": NOT_POSTGRES}
    try:
        url = create_database(database_url, "unogas_bench")
    except Exception as exc:  # no CREATEDB privilege (or the like): the phase is skipped, not the run
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"failover_skipped": f"skipped, cannot create a database: {reason}"}
    times: list[float] = []
    try:
        for index in range(rounds):
            report(f"failover: round {index + 1} of {rounds} (two `run` processes, kill -9 of the leader)")
            times.append(one_round(url, workdir, index))
    finally:
        drop_database(database_url, url)
    return {
        "failover_seconds": statistics.median(times),
        "failover_max_seconds": max(times),
        "failover_round_seconds": [round(t, 3) for t in times],
    }
