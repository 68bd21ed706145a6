"""One leader per bot: only one `unogas-bot run` polls (or owns the webhook) for a token at a time.

Two processes answering the same customers would each keep their own copy of every conversation in memory
and overwrite each other's in the database. So `run` first becomes the leader, and a second process waits
as a hot standby: started, connected, its health endpoint saying "standby", ready to take over.

**PostgreSQL** (`PostgresLeadership`): a session-level advisory lock keyed by the bot's id, held on a
connection of its own (not the pool's). The two-key form `pg_try_advisory_lock(int4, int4)` is used (the
bot id's high and low halves): its key space is separate from the single-key locks the account protection
and the schema upgrade take, so no hash of theirs can ever collide with it. The standby tries every
`RETRY_EVERY` seconds. The lock goes with the leader's session:

- the process dies (kill -9, a crash): the kernel closes its socket, PostgreSQL ends the session at once;
- the machine or the network goes away: the session is set to end after `LEASE` seconds without a
  statement (`idle_session_timeout`, PostgreSQL 14+; on older servers TCP keepalives of a few seconds),
  and the leader sends one every `PING_EVERY` seconds;

so a standby takes over within `LEASE` + `RETRY_EVERY` seconds plus its own start (loading the persisted
conversations), well within 10 s.

**The epoch.** A new leader raises the bot's epoch (`bot_leadership`, storage/inbox.py) on the lock's
connection as soon as it holds the lock; every transaction of a leader that writes for a customer checks
it (FOR SHARE), so an old leader's work either committed before the takeover (the raise waits for it) or
rolls back: the updates it was handling stay in the inbox for the new leader.

**Fencing.** A leader stops handling updates (the update processor asks `confirm()` before each one, and
the Bot API client before each request, `may_send()`), and the watchdog calls `on_lost` (the runner: one
log line, then the process exits at once, without writing conversation state; the service manager starts
it again as a standby):

- at once when the lock's connection reports an error or closes (the session was terminated by a DBA or a
  pooler, the connection reset): the lock went with it, and a standby may hold it already;
- after `FENCE_AFTER` seconds (< `LEASE`) without a confirmation when the connection is only silent: the
  server keeps the lock at least `LEASE` seconds after the last statement it received, so such a leader
  has stopped before a standby can lead. Also at once when `confirm()` refused an update or a reply for
  that reason: what it refused is not handled, so the process must not go on leading without it.

A leader frozen longer than `LEASE` (SIGSTOP, a stalled VM) wakes up with its session gone: it sends
nothing more, and whatever it was writing finds the newer epoch and rolls back.

**SQLite** (`FileLeadership`): one process per database file. An exclusive `flock` on `<file>.lock`,
released by the kernel when the process ends however it ends; a second `run` refuses to start (`run` is
for one machine there; a standby needs PostgreSQL). The kernel releases the lock only when the process is
gone, so there is no old leader to fence and no epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from storage.inbox import RAISE_EPOCH

log = logging.getLogger(__name__)

RETRY_EVERY = 1.0  # seconds between a standby's tries
PING_EVERY = 1.0  # seconds between the leader's confirmations of its session
PING_TIMEOUT = 1.5  # seconds a confirmation may take
FENCE_AFTER = 3.0  # seconds without a confirmation after which the leader stops handling updates
LEASE = 5.0  # seconds without a statement after which PostgreSQL ends the leader's session
CONNECT_TIMEOUT = 5.0
# Seconds a new leader waits to raise the epoch (behind the old leader's open transactions, which the
# server ends after at most its idle_in_transaction_session_timeout); then it lets the lock go and retries.
RAISE_TIMEOUT = 15.0


class LeadershipRefused(Exception):
    """Another process leads and this one cannot wait for it (SQLite): `run` ends with this line."""


class Leadership:
    """Whether this process may handle updates; the runner acquires it before serving Telegram."""

    role = "starting"  # "starting", "standby", "leader", "fenced" or "stopped"
    # False: `acquire` never waits (it leads or refuses at once), so `run` acquires before anything else.
    waits = False

    async def acquire(self) -> None:
        """Return once this process is the leader (waiting as a standby meanwhile)."""
        self.role = "leader"

    # The epoch this process leads with (PostgreSQL; storage/inbox.py), None where there is none.
    epoch: int | None = None

    def fresh(self) -> bool:
        """Is the leadership confirmed recently enough to handle an update now?"""
        return self.role == "leader"

    async def confirm(self) -> bool:
        """True if this process may handle an update now (see the module docstring: fencing)."""
        return self.fresh()

    async def may_send(self) -> bool:
        """May this process call the Bot API now? Before it leads (getMe, a standby's calls) and after it
        stopped, yes; while it leads, only with its leadership confirmed; once fenced, never."""
        if self.role == "leader":
            return await self.confirm()
        return self.role != "fenced"

    async def release(self) -> None:
        """Give the leadership up (after the last write)."""
        self.role = "stopped"


def lock_keys(bot_id: int) -> tuple[int, int]:
    """The bot id as the two signed 32-bit keys of pg_advisory_lock(int4, int4)."""
    unsigned = bot_id & 0xFFFFFFFFFFFFFFFF
    high, low = unsigned >> 32, unsigned & 0xFFFFFFFF
    return _signed32(high), _signed32(low)


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a DSN asyncpg reads (libpq's `sslmode` was renamed `ssl` for SQLAlchemy)."""
    parsed = make_url(url).set(drivername="postgresql")
    query = dict(parsed.query)
    if "ssl" in query:
        query["sslmode"] = query.pop("ssl")
    return parsed.set(query=query).render_as_string(hide_password=False)


class PostgresLeadership(Leadership):
    """The advisory-lock leadership on PostgreSQL (see the module docstring)."""

    waits = True

    def __init__(
        self,
        url: str,
        bot_id: int,
        on_lost: Callable[[str], None],
        *,
        retry_every: float = RETRY_EVERY,
        lease: float = LEASE,
        fence_after: float = FENCE_AFTER,
        ping_every: float = PING_EVERY,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self.bot_id = bot_id
        self.keys = lock_keys(bot_id)
        self._on_lost = on_lost
        self.retry_every = retry_every
        self.lease = lease
        self.fence_after = fence_after
        self.ping_every = ping_every
        self._conn: Any = None
        self._confirmed = 0.0  # monotonic time of the last confirmation
        self._watchdog: asyncio.Task[None] | None = None
        self._ping_lock = asyncio.Lock()
        self.database_ok = False  # the last statement on the lock's connection succeeded
        self.epoch: int | None = None

    async def _connect(self) -> Any:
        import asyncpg

        lease_ms = str(round(self.lease * 1000))
        keepalive = str(max(1, round(self.lease / 3)))
        conn = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT,
            server_settings={
                "application_name": "unogas-bot leader lock",
                "tcp_keepalives_idle": keepalive,
                "tcp_keepalives_interval": "1",
                "tcp_keepalives_count": "2",
            },
        )
        with contextlib.suppress(Exception):  # before PostgreSQL 14 the keepalives alone do it
            await conn.execute(f"SET idle_session_timeout = {lease_ms}")
        return conn

    async def acquire(self) -> None:
        """Try for the lock every `retry_every` seconds; the first refusal is logged once (standby)."""
        told = False
        while True:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect()
                got = await asyncio.wait_for(
                    self._conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *self.keys), PING_TIMEOUT
                )
                self.database_ok = True
                if got:
                    # The old leader's transactions still open finish first (they hold the epoch FOR
                    # SHARE); those that come after see the new epoch and roll back.
                    self.epoch = int(
                        await asyncio.wait_for(self._conn.fetchval(RAISE_EPOCH, self.bot_id), RAISE_TIMEOUT)
                    )
            except Exception as exc:  # refused, unreachable, timed out: try again
                self.database_ok = False
                await self._drop_connection()
                if not told:
                    reason = type(exc).__name__
                    log.warning("leadership: the database is not reachable (%s); trying again", reason)
                    told = True
                await asyncio.sleep(self.retry_every)
                continue
            if got:
                break
            if self.role != "standby":
                self.role = "standby"
                log.info(
                    "standby: another process is the leader of bot %d on this database; waiting to take over",
                    self.bot_id,
                )
            await asyncio.sleep(self.retry_every)
        self._confirmed = time.monotonic()
        if self.role == "standby":
            log.info(
                "leader: took over bot %d (epoch %d); loading the saved conversations",
                self.bot_id,
                self.epoch,
            )
        self.role = "leader"
        self._conn.add_termination_listener(self._closed)
        self._watchdog = asyncio.ensure_future(self._watch())

    def _closed(self, conn: Any) -> None:
        """The lock's connection is gone (terminated, reset, closed): so is the lock. Fence at once."""
        if conn is self._conn and self.role == "leader":
            self._lose("the database closed the connection that holds the leadership")

    def fresh(self) -> bool:
        return self.role == "leader" and time.monotonic() - self._confirmed < self.fence_after

    async def confirm(self) -> bool:
        if self.fresh():
            return True
        if self.role != "leader":
            return False
        await self._ping()
        if self.role == "leader" and not self.fresh():
            # Refused: the update (or reply) asking is dropped, so this process must not go on leading
            # should a later ping be answered; it stops, and the next leader handles what it dropped.
            self._lose(self._unconfirmed())
        return self.fresh()

    def _unconfirmed(self) -> str:
        return f"the database connection that holds it was not confirmed for {self.fence_after:g} s"

    async def _ping(self) -> None:
        """One statement on the lock's connection: it proves the session (and the lock) still exists, and
        keeps PostgreSQL from ending it as idle. An answer that is an error (the session was terminated,
        the connection reset or closed) means the lock is gone: fenced at once. No answer in time (a
        silent network) is retried until `fence_after`."""
        async with self._ping_lock:
            if self.role != "leader":
                return
            try:
                await asyncio.wait_for(self._conn.fetchval("SELECT 1"), PING_TIMEOUT)
            except TimeoutError:
                self.database_ok = False
                return
            except Exception as exc:
                self.database_ok = False
                self._lose(f"the connection that holds the leadership failed ({type(exc).__name__})")
                return
            self.database_ok = True
            self._confirmed = time.monotonic()

    def _lose(self, why: str) -> None:
        if self.role != "leader":
            return
        self.role = "fenced"
        self._on_lost(f"lost the leadership of bot {self.bot_id}: {why}")

    async def _watch(self) -> None:
        """Confirm the session every `ping_every` seconds; fence as soon as it has not been confirmed for
        `fence_after` seconds."""
        while self.role == "leader":
            await self._ping()
            if self.role == "leader" and not self.fresh():
                self._lose(self._unconfirmed())
            if self.role != "leader":
                return
            await asyncio.sleep(self.ping_every)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                conn.terminate()

    async def release(self) -> None:
        """Stop confirming and close the session: PostgreSQL releases the lock with it (an explicit unlock
        first, so a standby does not wait for the server to notice the closed socket)."""
        was_leader = self.role == "leader"
        self.role = "stopped"
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watchdog
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                if was_leader:
                    await asyncio.wait_for(conn.execute("SELECT pg_advisory_unlock_all()"), PING_TIMEOUT)
                await asyncio.wait_for(conn.close(), PING_TIMEOUT)
            except Exception:  # closing anyway
                conn.terminate()


class FileLeadership(Leadership):
    """One process per SQLite file: an exclusive lock on `<file>.lock` (see the module docstring)."""

    def __init__(self, database_path: str) -> None:
        self.path = Path(database_path + ".lock")
        self._fd: int | None = None

    async def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: nothing to lock with; one process per file is up to the operator
            self.role = "leader"
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LeadershipRefused(
                f"another unogas-bot run is using {self.path.with_suffix('')} (it holds {self.path}); "
                "only one may run on an SQLite database"
            ) from None
        self._fd = fd
        self.role = "leader"

    async def release(self) -> None:
        self.role = "stopped"
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the lock


def leadership_for(url: str, bot_id: int, on_lost: Callable[[str], None]) -> Leadership:
    """The leadership fitting the database `url` names: PostgreSQL's lock, an SQLite file's, or none for
    an in-memory SQLite database (nobody else can open it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLeadership(url, bot_id, on_lost)
    database = parsed.database or ""
    in_memory = not database or database == ":memory:" or "mode=memory" in url
    if parsed.get_backend_name() == "sqlite" and not in_memory:
        return FileLeadership(str(Path(database).resolve()))
    return Leadership()
