"""bcrypt off the event loop, its 72-byte limit, and the ephemeral digests that confirm repeated secrets."""

from __future__ import annotations

import asyncio

import bcrypt

from unogas_bot.security.hashing import EphemeralMac, Hasher


async def test_hash_and_verify_roundtrip_with_unicode():
    hasher = Hasher(rounds=4, workers=2)
    try:
        digest = await hasher.hash("Città di Nápoli ☀")
        assert digest.startswith("$2b$04$")
        assert await hasher.verify("Città di Nápoli ☀", digest)
        assert not await hasher.verify("citta di napoli", digest)
    finally:
        hasher.close()


async def test_verify_never_raises_on_long_or_malformed_input():
    hasher = Hasher(rounds=4)
    try:
        digest = await hasher.hash("x" * 72)
        # Over 72 bytes is never a match (bcrypt itself would silently truncate).
        assert not await hasher.verify("x" * 73, digest)
        assert not await hasher.verify("🔥" * 40, digest)
        assert not await hasher.verify("anything", "not-a-bcrypt-hash")
        assert not await hasher.verify("anything", None), "no hash: a dummy check, then False"
    finally:
        hasher.close()


async def test_hashing_runs_off_the_event_loop():
    hasher = Hasher(rounds=10, workers=1)
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # let the ticker start
        await hasher.hash("a long enough password")
        task.cancel()
        # A hash at cost 10 takes tens of milliseconds; had it run on the event loop, the ticker could not
        # have ticked at all meanwhile. (Not a timing bound: only "the loop kept turning".)
        assert ticks >= 2, ticks
    finally:
        hasher.close()


def test_hasher_uses_the_configured_cost():
    hasher = Hasher(rounds=5)
    try:
        digest = asyncio.run(hasher.hash("password one two"))
        assert digest.split("$")[2] == "05"
        assert bcrypt.checkpw(b"password one two", digest.encode())
    finally:
        hasher.close()


def test_ephemeral_mac_matches_only_in_this_process():
    mac, other_process = EphemeralMac(), EphemeralMac()
    stored = mac.digest("segreto")
    assert "segreto" not in stored
    assert mac.matches("segreto", stored) and mac.is_current(stored)
    assert not mac.matches("Segreto", stored)
    assert not other_process.is_current(stored) and not other_process.matches("segreto", stored)
    assert not mac.matches("segreto", None)
