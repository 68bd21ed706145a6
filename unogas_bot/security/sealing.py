"""Sealing what customers typed before it is written down: the update inbox's payloads (AES-256-GCM).

An update waiting in the inbox holds the customer's message as Telegram sent it, a password included. It is
stored only sealed: AES-GCM with a 256-bit key, a fresh 96-bit nonce per payload, and the row it belongs to
(bot and update id) as associated data, so a payload copied into another row does not open. The key is
`INBOX_KEY` (32 random bytes, base64 or hex) or, without it, derived from the bot token with HKDF-SHA256:
either way it is never in the database, so the database alone reveals nothing.

The same master secret gives, through HKDF with another label, the key of the digests a form keeps of a
secret's first entry (security/hashing.py, `EphemeralMac.derived`): every process of one bot computes the
same digests, so a standby that takes over between a password and its repetition can still compare them.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from unogas_bot.config import KEY_BYTES, parse_key

NONCE_BYTES = 12
# HKDF labels: one key per use of the master secret.
_INBOX_INFO = b"unogas-bot inbox payloads v1"
_DIGEST_INFO = b"unogas-bot draft digests v1"
_TOKEN_SALT = b"unogas-bot: derived from the bot token"


class SealError(Exception):
    """A payload that does not open: another key (INBOX_KEY or the token changed), or it was altered."""


def master_secret(inbox_key: str | None, token: str | None) -> bytes:
    """The secret both keys come from: INBOX_KEY when set, else the token (hashed: never used as it is)."""
    if inbox_key:
        return parse_key(inbox_key)
    if not token:
        raise ValueError("needs INBOX_KEY or the bot token")
    return hashlib.sha256(_TOKEN_SALT + token.encode()).digest()


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(secret)


def digest_key(secret: bytes) -> bytes:
    """The key of a form's keyed digests, from the master secret."""
    return _derive(secret, _DIGEST_INFO)


class Sealer:
    """Seals and opens inbox payloads with the key derived from the master secret."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(_derive(secret, _INBOX_INFO))

    def __repr__(self) -> str:
        return "Sealer(<key>)"

    @staticmethod
    def _row(bot_id: int, update_id: int) -> bytes:
        return f"{bot_id}:{update_id}".encode()

    def seal(self, plain: bytes, bot_id: int, update_id: int) -> bytes:
        """nonce || ciphertext || tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, self._row(bot_id, update_id))

    def open(self, sealed: bytes, bot_id: int, update_id: int) -> bytes:
        if len(sealed) <= NONCE_BYTES:
            raise SealError("too short to be a sealed payload")
        try:
            return self._aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._row(bot_id, update_id)
            )
        except InvalidTag:
            raise SealError("the payload does not open with this key") from None
