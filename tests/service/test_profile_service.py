"""Every change of a logged-in customer's profile, called directly: what is stored, what is audited,
which sessions stay."""

from __future__ import annotations

from tests.kit.stores import Stores
from tests.service.conftest import EMAIL, GIULIA, OWNER, PASSWORD, events, hashed, new_mario
from unogas_bot.domain import AccountView
from unogas_bot.service import login, profile, registration, session
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import AccountGone, EmailInUse, InvalidCredentials, LoggedIn, ProfileChanged


async def test_change_password_keeps_only_the_own_session(
    services: Services, mario: AccountView, look: Stores
) -> None:
    await login.log_in(services, OWNER, EMAIL, PASSWORD)
    await login.log_in(services, 3003, EMAIL, PASSWORD)  # another phone
    changed = await profile.change_password(services, OWNER, mario.id, hashed("Tramonto rosso 4521"))
    assert isinstance(changed, ProfileChanged)
    assert await session.current_account(services, OWNER) is not None
    assert await session.current_account(services, 3003) is None
    assert (await events(look, mario.id))[-1] == "password_changed"
    assert isinstance(await login.log_in(services, OWNER, EMAIL, PASSWORD), InvalidCredentials)
    assert isinstance(await login.log_in(services, OWNER, EMAIL, "Tramonto rosso 4521"), LoggedIn)


async def test_change_email(services: Services, mario: AccountView, look: Stores) -> None:
    same = await profile.change_email(services, OWNER, mario, " MARIO.ROSSI@example.it")
    assert same == ProfileChanged(mario)  # the same address after normalisation: nothing written
    changed = await profile.change_email(services, OWNER, mario, "Mario.Nuovo@Example.it")
    assert isinstance(changed, ProfileChanged) and changed.account.email == "mario.nuovo@example.it"
    assert (await events(look, mario.id))[-1] == "email_changed"


async def test_change_email_to_an_address_in_use(
    services: Services, mario: AccountView, look: Stores
) -> None:
    giulia = new_mario(email="giulia@example.it", customer_code=GIULIA.customer_code, user_id=4)
    assert isinstance(await registration.register(services, giulia), registration.Registered)
    taken = await profile.change_email(services, OWNER, mario, "Giulia@example.it")
    assert isinstance(taken, EmailInUse)
    assert (await look.accounts.get(mario.id)).email == EMAIL  # type: ignore[union-attr]


async def test_change_phone_and_remove_it(services: Services, mario: AccountView, look: Stores) -> None:
    changed = await profile.change_phone(services, OWNER, mario, "+393331112222")
    assert isinstance(changed, ProfileChanged) and changed.account.phone == "+393331112222"
    removed = await profile.change_phone(services, OWNER, mario, None)
    assert isinstance(removed, ProfileChanged) and removed.account.phone is None
    assert (await events(look, mario.id))[-2:] == ["phone_changed", "phone_removed"]


async def test_change_question(services: Services, mario: AccountView, look: Stores) -> None:
    changed = await profile.change_question(
        services, OWNER, mario, "Il mio primo viaggio?", hashed("Lisbona")
    )
    assert isinstance(changed, ProfileChanged)
    assert changed.account.security_question == "Il mio primo viaggio?"
    assert changed.account.answer_hash != mario.answer_hash
    assert (await events(look, mario.id))[-1] == "question_changed"


async def test_a_change_to_a_profile_erased_meanwhile(services: Services, mario: AccountView) -> None:
    from unogas_bot.service import erasure

    await erasure.erase_profile(services, mario.id)
    assert await profile.change_phone(services, OWNER, mario, None) == AccountGone()
    assert (
        await profile.change_password(services, OWNER, mario.id, hashed("Tramonto rosso 4521"))
        == AccountGone()
    )
