"""Password recovery's use cases called directly."""

from __future__ import annotations

from tests.kit.stores import Stores
from tests.service.conftest import ANSWER, EMAIL, MARIO, OWNER, PASSWORD, QUESTION, events, hashed
from unogas_bot.domain import AccountView
from unogas_bot.service import login, recovery, session
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import (
    AnswerAccepted,
    AnswerWrong,
    IdentityMismatch,
    LoggedIn,
    PasswordChanged,
    RecoveryQuestion,
)


async def test_recovery_end_to_end(services: Services, mario: AccountView, look: Stores) -> None:
    await login.log_in(services, OWNER, EMAIL, PASSWORD)
    asked = await recovery.identify(services, OWNER, EMAIL, MARIO.customer_code.lower())
    assert asked == RecoveryQuestion(mario.id, QUESTION)
    wrong = await recovery.check_answer(services, OWNER, mario.id, "non ricordo")
    assert isinstance(wrong, AnswerWrong) and wrong.left == services.settings.limits.recovery_failures - 1
    assert isinstance(await recovery.check_answer(services, OWNER, mario.id, ANSWER), AnswerAccepted)
    new = "Tramonto rosso 4521"
    assert isinstance(
        await recovery.set_new_password(services, OWNER, mario.id, hashed(new)), PasswordChanged
    )
    assert await session.current_account(services, OWNER) is None  # every session ended
    assert (await events(look, mario.id))[-1] == "password_recovered"
    assert isinstance(await login.log_in(services, OWNER, EMAIL, new), LoggedIn)


async def test_an_address_and_code_of_no_profile(services: Services, mario: AccountView) -> None:
    assert isinstance(
        await recovery.identify(services, 5, "altro@example.it", MARIO.customer_code), IdentityMismatch
    )
