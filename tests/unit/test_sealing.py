"""Sealing the inbox's payloads (security/sealing.py) and the INBOX_KEY setting."""

from __future__ import annotations

import base64

import pytest

from unogas_bot.config import ConfigError, Settings, parse_key
from unogas_bot.security import sealing
from unogas_bot.security.hashing import EphemeralMac

KEY = bytes(range(32))
PASSWORD = "Lanterna verde 1987"


def test_a_sealed_payload_opens_only_with_its_key_and_in_its_own_row() -> None:
    sealer = sealing.Sealer(KEY)
    sealed = sealer.seal(PASSWORD.encode(), 77, 1001)
    assert PASSWORD.encode() not in sealed and b"Lanterna" not in sealed
    assert sealer.open(sealed, 77, 1001) == PASSWORD.encode()
    assert sealer.seal(PASSWORD.encode(), 77, 1001) != sealed, "a fresh nonce each time"
    with pytest.raises(sealing.SealError):
        sealer.open(sealed, 77, 1002)  # copied into another row
    with pytest.raises(sealing.SealError):
        sealer.open(sealed, 78, 1001)  # another bot's
    with pytest.raises(sealing.SealError):
        sealing.Sealer(bytes(32)).open(sealed, 77, 1001)  # another key
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(sealing.SealError):
        sealer.open(tampered, 77, 1001)
    with pytest.raises(sealing.SealError):
        sealer.open(b"short", 77, 1001)
    assert "00010203" not in repr(sealer) and repr(sealer) == "Sealer(<key>)"


def test_inbox_key_is_32_bytes_in_hex_or_base64() -> None:
    assert parse_key(KEY.hex()) == KEY
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    assert parse_key(base64.urlsafe_b64encode(KEY).decode().rstrip("=")) == KEY
    for bad in ("", "not a key", base64.b64encode(b"short").decode(), KEY.hex()[:-2]):
        with pytest.raises(ValueError):
            parse_key(bad)


def test_a_bad_inbox_key_is_one_line_that_does_not_repeat_it() -> None:
    secret_ish = base64.b64encode(b"sixteen byte key").decode()
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"INBOX_KEY": secret_ish})
    assert str(refused.value).startswith("INBOX_KEY must be 32 bytes")
    assert secret_ish not in str(refused.value)
    settings = Settings.from_env({"INBOX_KEY": KEY.hex()})
    assert settings.inbox_key == KEY.hex() and KEY.hex() not in repr(settings)


def test_the_master_secret_is_inbox_key_or_else_derived_from_the_token() -> None:
    assert sealing.master_secret(KEY.hex(), "123:token") == KEY
    derived = sealing.master_secret(None, "123:token")
    assert derived == sealing.master_secret(None, "123:token") != sealing.master_secret(None, "123:other")
    assert b"123:token" not in derived
    with pytest.raises(ValueError):
        sealing.master_secret(None, None)


def test_digests_under_the_derived_key_compare_across_processes() -> None:
    """Two processes of one bot (a leader and the standby that takes over) compare each other's digests;
    a digest of another bot's key, or of a process-only key, is not current."""
    first = EphemeralMac.derived(sealing.digest_key(KEY))
    second = EphemeralMac.derived(sealing.digest_key(KEY))
    digest = first.digest(PASSWORD)
    assert second.is_current(digest) and second.matches(PASSWORD, digest)
    assert not second.matches("another password", digest)
    assert PASSWORD not in digest and KEY.hex()[:8] not in digest
    other = EphemeralMac.derived(sealing.digest_key(bytes(32)))
    assert not other.is_current(digest) and not EphemeralMac().is_current(digest)
    assert sealing.digest_key(KEY) != KEY, "a key of its own, not the inbox's"
