"""Why a change to an account cannot be made: one base class, so a caller can catch them all.

Raised by storage when the database's constraints settle a race (nothing of the attempt is saved), turned
by the use cases into outcomes (unogas_bot/service/outcomes.py).
"""

from __future__ import annotations


class Conflict(Exception):
    """A change the stored accounts refuse; nothing of it was stored."""


class RegistrationConflict(Conflict):
    """A registration that cannot be saved."""


class EmailTaken(RegistrationConflict):
    """Another account already uses this e-mail address (compared case-insensitively)."""


class CustomerAlreadyRegistered(RegistrationConflict):
    """The customer already has an account."""


class UnknownCustomer(RegistrationConflict):
    """No customer with this code in the registry."""


class AccountNotFound(Conflict, LookupError):
    """No account with this id (e.g. erased meanwhile)."""
