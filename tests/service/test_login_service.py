"""Logging in, called directly: the session, the owner, the audit, and the privacy notice recorded in
the login's own unit of work."""

from __future__ import annotations

import pytest

from tests.kit.stores import Stores
from tests.service.conftest import EMAIL, OWNER, PASSWORD, events
from unogas_bot.domain import AccountView
from unogas_bot.service import login, session
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import InvalidCredentials, LoggedIn


async def test_login_links_the_session_and_records_the_notice_once(
    services: Services, mario: AccountView, look: Stores
) -> None:
    first = await login.log_in(services, 2002, EMAIL, PASSWORD)
    assert isinstance(first, LoggedIn) and first.notice_shown  # registered without the notice
    assert (await session.current_account(services, 2002)).id == mario.id  # type: ignore[union-attr]
    stored = await look.accounts.get(mario.id)
    assert stored is not None and stored.privacy_version == services.settings.privacy_notice_version
    assert stored.owner == 2002  # proved the password: trusted from now on
    again = await login.log_in(services, 2002, EMAIL, PASSWORD)
    assert isinstance(again, LoggedIn) and not again.notice_shown
    assert (await events(look, mario.id))[-3:] == ["privacy_notice_shown", "login", "login"]


async def test_the_notice_and_the_login_commit_together(
    services: Services, mario: AccountView, look: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the notice is recorded takes the notice back too: one unit of work."""
    real = login.audit

    async def failing_login_event(uow: object, event: str, *args: object, **kwargs: object) -> None:
        if event == "login":
            raise RuntimeError("audit table unavailable")
        await real(uow, event, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(login, "audit", failing_login_event)
    with pytest.raises(RuntimeError):
        await login.log_in(services, OWNER, EMAIL, PASSWORD)
    stored = await look.accounts.get(mario.id)
    assert stored is not None and stored.privacy_version is None
    assert await session.current_account(services, OWNER) is None
    assert "privacy_notice_shown" not in await events(look, mario.id)


async def test_a_wrong_password_is_refused_and_audited(
    services: Services, mario: AccountView, look: Stores
) -> None:
    assert isinstance(await login.log_in(services, OWNER, EMAIL, "Non è questa 1234"), InvalidCredentials)
    assert isinstance(await login.log_in(services, OWNER, "nessuno@example.it", PASSWORD), InvalidCredentials)
    assert await session.current_account(services, OWNER) is None
    assert (await events(look, mario.id))[-1] == "login_failed"
