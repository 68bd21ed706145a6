"""What a use case can end in: one small frozen class per outcome, matched by the conversations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from unogas_bot.domain import AccountView, CustomerRecord

# --- login --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedIn:
    account: AccountView
    # The current privacy notice is to be shown with the welcome (recorded with the login).
    notice_shown: bool = False


@dataclass(frozen=True)
class AlreadyLoggedIn:
    """The login form's start: this Telegram user is logged in already."""

    account: AccountView


@dataclass(frozen=True)
class LoginBlocked:
    """The login form's start: the Telegram user may not try again before `until`."""

    until: datetime


# `stranger_on`: the profile another Telegram account than its own failed against, so its owner can be
# told (service/strangers.py). Not compared: the customer is told the same either way.


@dataclass(frozen=True)
class InvalidCredentials:
    """Unknown address or wrong password: the two are never told apart."""

    stranger_on: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LoginLocked:
    """Too many failures for the address or the Telegram user; no password was checked."""

    until: datetime
    stranger_on: int | None = field(default=None, compare=False)


LoginOutcome = LoggedIn | InvalidCredentials | LoginLocked

# --- registration -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityVerified:
    record: CustomerRecord


@dataclass(frozen=True)
class IdentityMismatch:
    """The data do not match a customer (which datum is never told); `left` tries remain this hour."""

    left: int


@dataclass(frozen=True)
class VerificationLocked:
    """Too many failed identity checks for this Telegram user or this customer code."""


@dataclass(frozen=True)
class AlreadyRegistered:
    """The customer already has a profile."""


VerifyOutcome = IdentityVerified | IdentityMismatch | VerificationLocked | AlreadyRegistered


@dataclass(frozen=True)
class EmailAccepted:
    """Free when checked (the database's unique constraint has the last word at Salva)."""


@dataclass(frozen=True)
class EmailInUse:
    left: int


@dataclass(frozen=True)
class TooManyEmailsInUse:
    """The hour's "address in use" answers are used up: the registration ends, whatever the address."""


EmailOutcome = EmailAccepted | EmailInUse | TooManyEmailsInUse


@dataclass(frozen=True)
class Registered:
    account: AccountView


@dataclass(frozen=True)
class CustomerTaken:
    """Another profile of the same customer was saved first."""


@dataclass(frozen=True)
class CustomerGone:
    """The customer left the registry after the identity check."""


RegisterOutcome = Registered | EmailInUse | TooManyEmailsInUse | CustomerTaken | CustomerGone

# --- recovery -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryQuestion:
    account_id: int
    question: str


@dataclass(frozen=True)
class TooManyMismatches:
    until: datetime


@dataclass(frozen=True)
class RecoveryLocked:
    until: datetime
    stranger_on: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AccountGone:
    """The profile was deleted during the conversation."""


IdentifyOutcome = RecoveryQuestion | IdentityMismatch | TooManyMismatches | RecoveryLocked


@dataclass(frozen=True)
class AnswerAccepted:
    pass


@dataclass(frozen=True)
class AnswerWrong:
    left: int
    question: str
    stranger_on: int | None = field(default=None, compare=False)


AnswerOutcome = AnswerAccepted | AnswerWrong | RecoveryLocked | AccountGone


@dataclass(frozen=True)
class PasswordRefused:
    """The new password breaks a rule: `reason` and `params` as in `rules.Invalid` (rules/errors.py)."""

    reason: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PasswordAcceptable:
    pass


@dataclass(frozen=True)
class PasswordChanged:
    pass


# --- the logged-in customer's own data (issue 15) -----------------------------------------------------


@dataclass(frozen=True)
class PasswordConfirmed:
    """The current password, asked again before a change, an export or an erasure, is right."""

    account: AccountView


@dataclass(frozen=True)
class ProfileChanged:
    account: AccountView


@dataclass(frozen=True)
class Erased:
    """The profile, its sessions and its attempts are gone; its audit trail is pseudonymised."""

    customer_code: str
