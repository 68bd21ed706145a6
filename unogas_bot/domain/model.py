"""The customer record, the account and what a registration stores: frozen values, safe to keep anywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A registry entry, as printed on the bills; also what a customer types to prove who they are.
    Names are normalised by unogas_bot/rules/; unused name fields are None."""

    customer_code: str
    kind: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    tax_code: str


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What a registration stores; hashes are computed by the caller, never here."""

    customer_code: str
    email: str
    password_hash: str = field(repr=False)  # hashes stay out of reprs, hence out of logs and tracebacks
    security_question: str
    answer_hash: str = field(repr=False)
    phone: str | None
    telegram_user_id: int
    # The privacy notice acknowledged before any data was given (its version and when).
    privacy_version: str | None = None
    privacy_acknowledged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account with its customer's registry record: a detached snapshot, safe to keep anywhere."""

    id: int
    customer: CustomerRecord
    email: str
    phone: str | None
    security_question: str
    password_hash: str = field(repr=False)
    answer_hash: str = field(repr=False)
    registered_at: datetime
    registered_by: int
    password_changed_at: datetime
    login_locked_until: datetime | None
    recovery_locked_until: datetime | None
    privacy_version: str | None = None
    privacy_acknowledged_at: datetime | None = None
    owner_telegram_user_id: int | None = None

    # The customer's fields, read through: an account is always some customer's.
    @property
    def customer_code(self) -> str:
        return self.customer.customer_code

    @property
    def kind(self) -> str:
        return self.customer.kind

    @property
    def first_name(self) -> str | None:
        return self.customer.first_name

    @property
    def last_name(self) -> str | None:
        return self.customer.last_name

    @property
    def company_name(self) -> str | None:
        return self.customer.company_name

    @property
    def tax_code(self) -> str:
        return self.customer.tax_code

    @property
    def owner(self) -> int:
        """The Telegram account the profile trusts: the one that last logged in, or else registered it."""
        return self.registered_by if self.owner_telegram_user_id is None else self.owner_telegram_user_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of an account's audit trail."""

    at: datetime
    event: str
    telegram_user_id: int | None
    detail: str
    # An erased profile's events keep the number, never the code.
    account_id: int | None = None
    customer_code: str | None = None
