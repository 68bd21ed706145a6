"""Registration's use cases called directly: the identity check, the e-mail choice and «Salva»."""

from __future__ import annotations

import dataclasses

from tests.kit.stores import Stores
from tests.service.conftest import EMAIL, GIULIA, MARIO, OWNER, events, new_mario
from unogas_bot.domain import AccountView
from unogas_bot.service import registration
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import (
    AlreadyRegistered,
    CustomerTaken,
    EmailAccepted,
    EmailInUse,
    IdentityMismatch,
    IdentityVerified,
    Registered,
)


async def test_register_saves_the_profile_with_its_event(services: Services, look: Stores) -> None:
    outcome = await registration.register(services, new_mario())
    assert isinstance(outcome, Registered)
    assert outcome.account.customer == MARIO  # the registry's record, composed
    assert outcome.account.email == EMAIL
    assert await events(look, outcome.account.id) == ["registered"]


async def test_salva_pressed_twice_is_one_profile(services: Services, look: Stores) -> None:
    new = new_mario()
    first = await registration.register(services, new)
    second = await registration.register(services, new)  # the confirmation was lost
    assert isinstance(first, Registered) and isinstance(second, Registered)
    assert first.account.id == second.account.id and await look.accounts.count() == 1


async def test_a_second_profile_for_the_customer_is_refused(services: Services, mario: AccountView) -> None:
    other = new_mario(email="altro@example.it", user_id=5)
    assert isinstance(await registration.register(services, other), CustomerTaken)


async def test_identity_check(services: Services, mario: AccountView) -> None:
    assert isinstance(await registration.verify_identity(services, 9, GIULIA), IdentityVerified)
    assert isinstance(await registration.verify_identity(services, 9, MARIO), AlreadyRegistered)
    wrong = dataclasses.replace(GIULIA, tax_code=MARIO.tax_code)
    assert isinstance(await registration.verify_identity(services, 9, wrong), IdentityMismatch)


async def test_email_choice(services: Services, mario: AccountView) -> None:
    assert isinstance(
        await registration.choose_email(services, 9, GIULIA.customer_code, "g@example.it"), EmailAccepted
    )
    taken = await registration.choose_email(services, 9, GIULIA.customer_code, " Mario.Rossi@Example.IT")
    assert isinstance(taken, EmailInUse)
    assert OWNER != 9
