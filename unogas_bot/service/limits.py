"""The names and keys of the limited attempts (storage/attempts.py), shared by the use cases.

Keys say what a limit is counted per: a Telegram user, an account, a customer code or a typed address.
Typed addresses and codes are kept as digests, so the attempt log holds no personal data of people who
may not even be customers.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from storage.attempts import account_key, telegram_key
from storage.models import ATTEMPT_KEY_LEN
from unogas_bot import rules

__all__ = ["account_key", "customer_key", "email_key", "telegram_key"]

HOUR = timedelta(hours=1)

# Registration
VERIFY = "verify"  # a failed identity check, per Telegram user and per customer code
EMAIL_IN_USE = "email_in_use"  # an "address already in use" answer, per Telegram user and per customer code
# Login
LOGIN_FAILED = "login_account"  # a password check, per account (or per unknown address); kept if it failed
LOGIN_LOCK = "login_lock"  # one entry when an address is locked; the lock lasts `login_lock`
LOGIN_USER_FAILED = "login_user"  # a password check by a Telegram user; kept if it failed
LOGIN_USER_LOCK = "login_user_lock"  # one entry each time the Telegram user is blocked
# Recovery
RECOVERY_WRONG = "recovery"  # an answer check, per account; kept if the answer was wrong
RECOVERY_MISMATCH = "recovery_verify"  # e-mail and customer code of no account, per Telegram user


def _digest(prefix: str, value: str) -> str:
    key = prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    assert len(key) <= ATTEMPT_KEY_LEN
    return key


def email_key(email: str) -> str:
    """The key of a typed address (normalised as stored: stripped, lower-case)."""
    return _digest("email:", email.strip().lower())


def customer_key(customer_code: str) -> str:
    """The key of a typed customer code: "UG100234" and "UG-100234" count together."""
    return _digest("customer:", rules.customer_code.key(customer_code))
