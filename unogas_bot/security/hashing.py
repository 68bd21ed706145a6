"""bcrypt hashing kept off the event loop.

bcrypt is slow on purpose (about 0.2 s at cost 12) and releases the GIL, so hashes run in a thread pool
sized to the cores: more threads would only queue CPU work and make every other chat wait. The worker
threads also run at a lower OS priority, so when the event loop (or a database driver thread) wakes up it
gets a core at once instead of queueing behind a hash: hashing still uses every idle cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from hashlib import sha256

import bcrypt

# bcrypt 5 raises ValueError beyond 72 bytes, in checkpw too: guard every call.
BCRYPT_MAX_BYTES = 72


def _utf8(secret: str) -> bytes:
    """The bytes of a typed secret. A lone surrogate (possible in a JSON string) has no UTF-8 form; kept
    as its own bytes it can never match a stored secret (those are validated), instead of crashing."""
    return secret.encode("utf-8", "surrogatepass")


class Hasher:
    """Hashes and checks secrets (passwords, security answers) with bcrypt in worker threads."""

    def __init__(self, rounds: int = 12, workers: int = 1) -> None:
        self.rounds = rounds
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="bcrypt", initializer=lower_thread_priority
        )
        # Fixed hashes to check against when the account does not exist, so an unknown e-mail costs the
        # same time as a wrong password: one per cost, at the cost the stored hashes have (see
        # `use_dummy_cost`). Made in the pool, like every hash, not on the event loop.
        self._dummies: dict[int, Future[bytes]] = {}
        self.use_dummy_cost(rounds)
        self.dummy_cost_set_at = float("-inf")  # not yet matched to the stored hashes (service/login.py)

    async def hash(self, secret: str) -> str:
        data = _utf8(secret)
        if len(data) > BCRYPT_MAX_BYTES:
            raise ValueError("secret longer than bcrypt's 72 bytes")
        loop = asyncio.get_running_loop()
        digest = await loop.run_in_executor(self._pool, _hashpw, data, self.rounds)
        return digest.decode()

    async def verify(self, secret: str, hashed: str | None) -> bool:
        """True if `secret` matches `hashed`; with no hash, does a dummy check and returns False."""
        data = _utf8(secret)
        target = hashed or (await asyncio.wrap_future(self._dummies[self.dummy_cost])).decode()
        too_long = len(data) > BCRYPT_MAX_BYTES
        if too_long:
            # Still spend the same time, then fail: no stored secret can be that long.
            data = data[:BCRYPT_MAX_BYTES]
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._pool, _checkpw, data, target.encode())
        return ok and hashed is not None and not too_long

    def use_dummy_cost(self, cost: int) -> None:
        """Check unknown accounts against a dummy hash of this cost: the cost most stored hashes have, so
        that after a change of `BCRYPT_ROUNDS` an unknown address still takes as long as a known one."""
        if cost not in self._dummies:
            self._dummies[cost] = self._pool.submit(_hashpw, secrets.token_bytes(16), cost)
        self.dummy_cost = cost
        self.dummy_cost_set_at = time.monotonic()

    def needs_rehash(self, hashed: str | None) -> bool:
        """Was `hashed` made at another cost than new hashes get? (Re-hashed at the next login.)"""
        return hashed is not None and hash_cost(hashed) != self.rounds

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# Niceness of the hash workers: the event loop thread (nice 0) wins a core about 10:1 against them.
HASH_THREAD_NICENESS = 10


def lower_thread_priority() -> None:
    """Lower the calling worker thread's scheduling priority (Linux: niceness is per thread)."""
    if sys.platform != "linux":  # elsewhere setpriority(PRIO_PROCESS, ...) would renice the whole process
        return
    # If not allowed here, hashing still works, only without the priority hint.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


def hash_cost(hashed: str) -> int | None:
    """The cost a bcrypt hash was made with ("$2b$12$..." -> 12), None if it is not a bcrypt hash."""
    parts = hashed.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None


def _hashpw(data: bytes, rounds: int) -> bytes:
    return bcrypt.hashpw(data, bcrypt.gensalt(rounds))


def _checkpw(data: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(data, hashed)
    except ValueError:  # a malformed stored hash must not crash a handler
        return False


class EphemeralMac:
    """Keyed digests to confirm a repeated secret without a second bcrypt hash.

    The key is never in the database, so a digest left in saved conversation state is useless to anyone
    reading it. By default the key lives only in this process's memory: after a restart a digest no longer
    matches, and the customer is simply asked for the pair again. `run` uses `derived(key)` instead, a key
    from INBOX_KEY or the token (security/sealing.py), which every process of the bot shares: a standby
    that takes over between a password and its repetition compares them as the old leader would have.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        # Names the key without revealing it: digests made with another key are told apart.
        self.key_id = (
            sha256(b"key id" + self._key).hexdigest()[:8] if key is not None else secrets.token_hex(4)
        )

    @classmethod
    def derived(cls, key: bytes) -> EphemeralMac:
        """Digests under `key` (a shared, derived key) instead of a random one."""
        return cls(key)

    def digest(self, secret: str) -> str:
        mac = hmac.new(self._key, _utf8(secret), sha256).hexdigest()
        return f"{self.key_id}:{mac}"

    def is_current(self, stored: str | None) -> bool:
        """Was `stored` made with this process's key?"""
        return stored is not None and stored.startswith(f"{self.key_id}:")

    def matches(self, secret: str, stored: str | None) -> bool:
        return stored is not None and hmac.compare_digest(self.digest(secret), stored)
