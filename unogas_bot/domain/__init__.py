"""The domain: the account, the customer record and the profile types, their conflicts, and the one
e-mail normalisation and the one customer-code key every layer above compares with.

Pure Python (no SQLAlchemy, no Telegram): storage maps these to rows, the use cases and the forms use them.
"""

from unogas_bot.domain.conflicts import (
    AccountNotFound,
    Conflict,
    CustomerAlreadyRegistered,
    EmailTaken,
    RegistrationConflict,
    UnknownCustomer,
)
from unogas_bot.domain.keys import customer_code_key, normalize_email
from unogas_bot.domain.model import AccountView, AuditEntry, CustomerRecord, NewAccount

__all__ = [
    "AccountNotFound",
    "AccountView",
    "AuditEntry",
    "Conflict",
    "CustomerAlreadyRegistered",
    "CustomerRecord",
    "EmailTaken",
    "NewAccount",
    "RegistrationConflict",
    "UnknownCustomer",
    "customer_code_key",
    "normalize_email",
]
