"""The two comparisons every layer must make alike: an e-mail address and a customer code.

Written once here; storage stores and looks up by them, the limits digest them, the use cases compare with
them. (The field rules below, unogas_bot/rules/, validate what is typed; they return values these keys
leave unchanged.)
"""

from __future__ import annotations

import re
import unicodedata

# What a key leaves out of an upper-cased code: all but ASCII letters and digits (upper-casing leaves no
# ASCII lower-case letter behind).
_NOT_IN_KEY = re.compile(r"[^A-Z0-9]+")


def normalize_email(email: str) -> str:
    """The stored form of an address: NFKC-normalised, stripped and lower-cased, so the plain unique
    constraint on ``accounts.email`` makes addresses unique case-insensitively; a domain label in its
    ASCII form ("xn--bcher-kva") is read as the e-mail rule reads it ("bücher"), so a look-up that skips
    the rule (support's `accounts show`) finds what the rule stored."""
    value = unicodedata.normalize("NFKC", email).strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or "xn--" not in domain:
        return value
    return f"{local}@{'.'.join(_unicode_label(label) for label in domain.split('.'))}"


def _unicode_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        decoded = unicodedata.normalize("NFKC", label[4:].encode("ascii").decode("punycode")).lower()
    except (UnicodeError, ValueError):  # no valid ASCII form: compared as typed
        return label
    return decoded or label


def customer_code_key(code: str) -> str:
    """The form two customer codes are compared in: upper-case letters and digits only.

    Bills print "UG-100234", customers type "UG100234" or "ug 100 234"; the separators carry no meaning,
    so the registry, the accounts, the limits and recovery all compare this key (the registry keeps it in
    ``customers.code_key``) while the code as printed stays what is shown. Works on any text (a support
    tool's argument too), not only on validated codes.
    """
    upper = code.upper()
    plain = upper.replace("-", "").replace("/", "")
    if plain.isascii() and plain.isalnum():  # a valid code (imports key a million of them): no regex
        return plain
    return _NOT_IN_KEY.sub("", upper)


# --- the keys limited attempts are counted under (storage/attempts.py keeps them) ------------------------

ATTEMPT_KEY_LEN = 255  # the column's size: a key never grows past it
PAIR_SEPARATOR = "|"


def account_key(account_id: int) -> str:
    """The attempt key for everything limited per account (distinct from Telegram-user keys)."""
    return f"account:{account_id}"


def telegram_key(telegram_user_id: int) -> str:
    """The attempt key for everything limited per Telegram user."""
    return f"tg:{telegram_user_id}"


def pair_key(key: str, telegram_user_id: int) -> str:
    """The key of one Telegram user's attempts on `key` (an account, a typed address, a customer code)."""
    return f"{key}{PAIR_SEPARATOR}{telegram_key(telegram_user_id)}"
