"""The names and keys of the limited attempts (storage/attempts.py), shared by the use cases.

Keys say what a limit is counted per: a Telegram user, an account, a customer code or a typed address, or
one Telegram user's attempts on one of those (`pair_key`; the plain keys are the domain's,
unogas_bot/domain/keys.py). Typed addresses and codes are kept as digests,
so the attempt log holds no personal data of people who may not even be customers.

The owner and strangers apart (unogas_bot/service/strangers.py): each Telegram account has a bucket of its
own per account (its pair key), so another account's failures never lock it; the failures of every
Telegram account but the profile's own are also counted together per account, and past that cap only
the other accounts wait.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from unogas_bot.domain.keys import ATTEMPT_KEY_LEN, customer_code_key, normalize_email
from unogas_bot.security.hashing import EphemeralMac

__all__ = ["customer_key", "email_key", "unknown_customer_key"]

HOUR = timedelta(hours=1)

# Registration
VERIFY = "verify"  # a failed identity check, per Telegram user and per customer code
EMAIL_IN_USE = "email_in_use"  # an "address already in use" answer, per Telegram user and per customer code
# Login
LOGIN_FAILED = "login_account"  # a password check, per (account or unknown address, Telegram user)
LOGIN_LOCK = "login_lock"  # one entry when that pair is locked; the lock lasts `login_lock`
LOGIN_STRANGERS = "login_strangers"  # a check by a Telegram user the account does not trust, per account
LOGIN_USER_FAILED = "login_user"  # a password check by a Telegram user; kept if it failed
LOGIN_USER_LOCK = "login_user_lock"  # one entry each time the Telegram user is blocked
# Recovery
RECOVERY_WRONG = "recovery"  # an answer check, per (account, Telegram user); kept if the answer was wrong
RECOVERY_STRANGERS = "recovery_strangers"  # an answer check by an untrusted Telegram user, per account
RECOVERY_MISMATCH = "recovery_verify"  # e-mail and customer code of no account, per Telegram user
# The owner told of other accounts' failures (one entry per alert; at most one an `owner_alert_interval`)
OWNER_ALERTED = "owner_alerted"


def _digest(prefix: str, value: str) -> str:
    key = prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    assert len(key) <= ATTEMPT_KEY_LEN
    return key


def email_key(email: str) -> str:
    """The key of a typed address (normalised as stored: the domain's `normalize_email`)."""
    return _digest("email:", normalize_email(email))


def customer_key(customer_code: str) -> str:
    """The key of a registry customer's code: "UG100234" and "UG-100234" count together."""
    return _digest("customer:", customer_code_key(customer_code))


def unknown_customer_key(mac: EphemeralMac, customer_code: str) -> str:
    """The key of a typed code that is no registry customer's: it may be anything (a password typed at the
    wrong question), so it is kept only as this process's keyed digest, which nobody reading the database
    can test guesses against. It counts like a customer's, so the replies never tell the two apart."""
    return "customer?:" + mac.digest(customer_code_key(customer_code)).rpartition(":")[2][:32]
