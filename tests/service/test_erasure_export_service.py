"""Export and erasure (GDPR art. 15 and 17), the housekeeping and the support tools' changes, called
directly."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import FakeClock
from tests.kit.stores import Stores
from tests.service.conftest import EMAIL, OWNER, PASSWORD, events
from unogas_bot.domain import AccountView
from unogas_bot.service import erasure, export, login, session, upkeep
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import AccountGone, Erased
from unogas_bot.service.support import Support, acting_operator


async def test_export_by_the_customer_and_by_support(
    services: Services, mario: AccountView, look: Stores
) -> None:
    await login.log_in(services, 3003, EMAIL, PASSWORD)  # another Telegram account's session
    mine = await export.export_profile(services, mario.id, OWNER, other="altro")
    assert mine is not None and mine["format"] == export.FORMAT
    text = export.as_json(mine).decode()
    assert EMAIL in text and "password_hash" not in text and "answer_hash" not in text
    assert "3003" not in text and "altro" in text  # another account is named, never numbered
    assert await export.export_profile(services, mario.id, None) is not None
    assert (await events(look, mario.id))[-2:] == ["data_exported", "data_exported"]
    trail = await look.accounts.recent_events(mario.id)
    assert trail[0].detail == "by support staff" and trail[0].telegram_user_id is None


async def test_erasure_leaves_a_pseudonymised_trail(
    services: Services, mario: AccountView, look: Stores
) -> None:
    assert await erasure.erase_profile(services, mario.id, by_support=True) == Erased(mario.customer_code)
    assert await look.accounts.get(mario.id) is None
    trail = await look.accounts.audit_trail(account_id=mario.id)
    assert trail and all(entry.customer_code is None and entry.telegram_user_id is None for entry in trail)
    assert trail[-1].event == "erased" and trail[-1].detail == "by support staff"
    assert await erasure.erase_profile(services, mario.id) == AccountGone()
    assert await export.export_profile(services, mario.id, None) is None


async def test_own_erasure_needs_the_session(services: Services, mario: AccountView, look: Stores) -> None:
    assert await erasure.erase_own_profile(services, OWNER, mario.id) == AccountGone()  # not logged in
    await login.log_in(services, OWNER, EMAIL, PASSWORD)
    assert await erasure.erase_own_profile(services, OWNER, mario.id) == Erased(mario.customer_code)
    assert await session.current_account(services, OWNER) is None


async def test_tidy_deletes_old_attempts_and_expired_sessions(
    services: Services, mario: AccountView, clock: FakeClock
) -> None:
    await login.log_in(services, OWNER, EMAIL, "Sbagliata 1234 xyz")
    await login.log_in(services, 3003, EMAIL, PASSWORD)
    clock.advance(services.settings.limits.session_ttl + timedelta(days=2))
    attempts, sessions = await upkeep.tidy(services, timedelta(days=1))
    assert attempts >= 1 and sessions == 1
    assert await upkeep.tidy(services, timedelta(days=1)) == (0, 0)


async def test_audit_retention(
    services: Services, mario: AccountView, look: Stores, clock: FakeClock
) -> None:
    clock.advance(services.settings.audit_retention + timedelta(days=1))
    assert await upkeep.prune_audit(services) == 1  # "registered"
    assert await look.accounts.recent_events(mario.id) == []


async def test_support_unlock_and_reveal_name_the_operator(
    services: Services, mario: AccountView, look: Stores
) -> None:
    support = Support(services.db, clock=services.clock)
    with acting_operator("anna"):
        await support.reveal_tax_code(mario)
        await support.unlock(mario.id)
    trail = await look.accounts.recent_events(mario.id)
    assert [(entry.event, entry.detail) for entry in trail[:2]] == [
        ("unlocked", "operator anna"),
        ("tax_code_revealed", "operator anna"),
    ]
    assert (await support.find(EMAIL)) == (await support.find(mario.customer_code.lower()))
