"""Session look-up, the login's start check, the profile view and logout, each called directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import FakeClock
from tests.kit.stores import Stores
from tests.service.conftest import EMAIL, OWNER, PASSWORD, events
from unogas_bot.domain import AccountView
from unogas_bot.service import login, session
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import (
    AlreadyLoggedIn,
    InvalidCredentials,
    LoggedIn,
    LoginBlocked,
    LoginLocked,
)


async def test_login_start_refuses_a_logged_in_user(services: Services, mario: AccountView) -> None:
    assert await session.login_start(services, OWNER) is None
    assert isinstance(await login.log_in(services, OWNER, EMAIL, PASSWORD), LoggedIn)
    started = await session.login_start(services, OWNER)
    assert isinstance(started, AlreadyLoggedIn) and started.account.id == mario.id


async def test_login_start_refuses_a_blocked_user(services: Services, mario: AccountView) -> None:
    for n in range(services.settings.limits.login_failures_per_user):
        failed = await login.log_in(services, 77, f"nessuno{n}@example.it", "Sbagliata 1234 xyz")
        assert isinstance(failed, InvalidCredentials | LoginLocked)  # the last one blocks at once
    started = await session.login_start(services, 77)
    assert isinstance(started, LoginBlocked) and started.until > services.clock()


async def test_the_session_look_up_ends_an_expired_session(
    services: Services, mario: AccountView, look: Stores, clock: FakeClock
) -> None:
    await login.log_in(services, OWNER, EMAIL, PASSWORD)
    assert (await session.profile_view(services, OWNER)).id == mario.id  # type: ignore[union-attr]
    clock.advance(services.settings.limits.session_ttl + timedelta(seconds=1))
    assert await session.current_account(services, OWNER) is None
    clock.advance(-services.settings.limits.session_ttl)  # back inside the old window: the session is gone
    assert await session.current_account(services, OWNER) is None


async def test_logout_is_one_unit_of_work_with_its_event(
    services: Services, mario: AccountView, look: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    await login.log_in(services, OWNER, EMAIL, PASSWORD)
    opened = []
    real = services.uow
    monkeypatch.setattr(services, "uow", lambda **kw: opened.append(kw) or real(**kw))
    assert await session.log_out(services, OWNER) is True
    assert len(opened) == 1  # session read, end and audit event: one transaction
    assert await session.current_account(services, OWNER) is None
    assert (await events(look, mario.id))[-1] == "logout"
    assert await session.log_out(services, OWNER) is False  # not logged in any more


async def test_logout_when_the_event_cannot_be_written_keeps_the_session(
    services: Services, mario: AccountView, monkeypatch: pytest.MonkeyPatch
) -> None:
    await login.log_in(services, OWNER, EMAIL, PASSWORD)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(session, "audit", broken)
    with pytest.raises(RuntimeError):
        await session.log_out(services, OWNER)
    monkeypatch.undo()
    assert (await session.current_account(services, OWNER)) is not None  # nothing half done
