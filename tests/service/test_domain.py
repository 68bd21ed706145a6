"""The domain: one conflict base, one e-mail normalisation, one customer-code key, an account that
composes its customer's record instead of repeating it."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from storage.db import Database
from storage.unit_of_work import UnitOfWork
from tests.service.conftest import GIULIA, new_mario
from unogas_bot import domain
from unogas_bot.domain import conflicts
from unogas_bot.service import limits
from unogas_bot.service.context import Services


def test_every_conflict_the_domain_defines_has_the_one_base() -> None:
    """Found by looking, not listed by hand: a conflict added without the base fails here."""
    defined = [
        cls
        for _, cls in inspect.getmembers(conflicts, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == conflicts.__name__
    ]
    assert len(defined) >= 6  # the base, the registration base, three registration conflicts, not found
    strays = [cls.__name__ for cls in defined if not issubclass(cls, domain.Conflict)]
    assert strays == []


async def test_a_conflict_storage_raises_is_caught_by_the_base(services: Services, mario: object) -> None:
    """The base is what storage really raises from a violated constraint, not only a class relation."""
    db: Database = services.db
    with pytest.raises(domain.Conflict) as caught:
        async with UnitOfWork(db, services.clock) as uow:
            await uow.accounts.register(new_mario(customer_code=GIULIA.customer_code, user_id=5))
    assert isinstance(caught.value, domain.EmailTaken)


def test_the_account_composes_the_customer_record() -> None:
    account_fields = {field.name for field in dataclasses.fields(domain.AccountView)}
    record_fields = {field.name for field in dataclasses.fields(domain.CustomerRecord)}
    assert "customer" in account_fields
    assert account_fields.isdisjoint(record_fields)  # no field written twice
    assert all(isinstance(getattr(domain.AccountView, name), property) for name in record_fields)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Mario.Rossi@Example.IT ", "mario.rossi@example.it"),
        ("ｍａｒｉｏ@example.it", "mario@example.it"),  # full-width letters: NFKC
    ],
)
def test_one_email_normalisation_used_by_the_limits(typed: str, stored: str) -> None:
    assert domain.normalize_email(typed) == stored
    assert limits.email_key(typed) == limits.email_key(stored)  # the limits count the stored form


def test_one_customer_code_key() -> None:
    assert domain.customer_code_key("ug-100 234/") == "UG100234"
    assert limits.customer_key("UG-100234") == limits.customer_key("ug100234")
