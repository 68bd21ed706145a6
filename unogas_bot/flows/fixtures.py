"""What a flow script can start from instead of typing it (`# accounts: demo`), as Botium's partial
conversations do: a script about changing the e-mail need not register and log in first.

`demo`: the demo customer Mario Rossi (UG-100234, from the demo customers) registered as
mario.rossi@example.it, with the script's password and security answer (its headers, or the run's
generated ones), and logged in as the script's user. Made through the use cases a conversation calls,
so the database holds what a real registration and login leave (audit events included).
"""

from __future__ import annotations

from unogas_bot import rules
from unogas_bot.domain import NewAccount
from unogas_bot.service import login, registration
from unogas_bot.service import privacy as privacy_service
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import LoggedIn, Registered

ACCOUNTS = ("none", "demo")  # the values of the `# accounts:` header
DEMO_CUSTOMER_CODE = "UG-100234"
DEMO_EMAIL = "mario.rossi@example.it"
DEMO_QUESTION = "Come si chiamava il mio primo gatto?"


class FixtureError(ValueError):
    """A fixture that cannot be made (its customer is not in the script's registry)."""


async def demo_account(services: Services, user_id: int, password: str, answer: str) -> None:
    """Register the demo customer with `password` and `answer`, and log `user_id` in."""
    version, at = privacy_service.acknowledged_now(services)
    new = NewAccount(
        customer_code=DEMO_CUSTOMER_CODE,
        email=DEMO_EMAIL,
        password_hash=await services.hasher.hash(password),
        security_question=DEMO_QUESTION,
        answer_hash=await services.hasher.hash(rules.answer.normalize(answer)),
        phone=None,
        telegram_user_id=user_id,
        privacy_version=version,
        privacy_acknowledged_at=at,
    )
    if not isinstance(await registration.register(services, new), Registered):
        raise FixtureError(f"accounts: demo needs the demo customer {DEMO_CUSTOMER_CODE} (customers: demo)")
    if not isinstance(await login.log_in(services, user_id, DEMO_EMAIL, password), LoggedIn):
        raise FixtureError("accounts: demo could not log the demo customer in")  # pragma: no cover
