"""Persistence for the bot: customer registry, accounts, sessions, attempts and audit trail.

Nothing here knows about Telegram. Repositories hand out frozen dataclasses, never ORM objects, and take a
``clock`` (timezone-aware UTC ``datetime`` factory) so tests control time.
"""

from storage.accounts import (
    AccountNotFound,
    AccountRepository,
    AccountView,
    AuditEntry,
    CustomerAlreadyRegistered,
    EmailTaken,
    NewAccount,
    RegistrationConflict,
    UnknownCustomer,
    normalize_email,
)
from storage.attempts import AttemptLog, account_key, telegram_key
from storage.customer_csv import (
    CsvFormatError,
    ImportRejected,
    ImportResult,
    RowError,
    import_file,
    iter_rows,
    validate_row,
)
from storage.db import Database, default_sqlite_url, utcnow
from storage.demo import DEMO_CUSTOMERS, load_demo
from storage.registry import CustomerRecord, CustomerRegistry, Identity

__all__ = [
    "DEMO_CUSTOMERS",
    "AccountNotFound",
    "AccountRepository",
    "AccountView",
    "AttemptLog",
    "AuditEntry",
    "CsvFormatError",
    "CustomerAlreadyRegistered",
    "CustomerRecord",
    "CustomerRegistry",
    "Database",
    "EmailTaken",
    "Identity",
    "ImportRejected",
    "ImportResult",
    "NewAccount",
    "RegistrationConflict",
    "RowError",
    "UnknownCustomer",
    "account_key",
    "default_sqlite_url",
    "import_file",
    "iter_rows",
    "load_demo",
    "normalize_email",
    "telegram_key",
    "utcnow",
    "validate_row",
]
