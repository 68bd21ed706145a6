"""The Telegram session: which profile a Telegram user is logged into (`/profilo`, the self-service forms,
the welcome text), the login form's start check, and logging out (`/esci`).

A look-up writes only when the session it finds has expired: that session is ended then, in a transaction
of its own that is no step of the update being handled (a second handling finds it gone and writes
nothing, so the steps of the update stay the same either way).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from storage.account_store import AccountStore
from unogas_bot.domain import AccountView, keys
from unogas_bot.service import limits
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import AlreadyLoggedIn, LoginBlocked

if TYPE_CHECKING:
    from unogas_bot.service.context import Services


async def current_account(services: Services, user_id: int) -> AccountView | None:
    """The account the Telegram user is logged into, or None; an expired session is ended."""
    return await AccountStore(services.db, clock=services.clock).session_account(user_id)


async def profile_view(services: Services, user_id: int) -> AccountView | None:
    """What `/profilo` shows: the logged-in customer's profile (None: not logged in)."""
    return await current_account(services, user_id)


async def user_blocked_until(services: Services, user_id: int) -> datetime | None:
    """Until when the Telegram user may not try to log in (None: they may)."""
    async with services.uow() as uow:
        return await uow.attempts.held_until(
            limits.LOGIN_USER_LOCK, keys.telegram_key(user_id), services.settings.limits.login_lock
        )


async def login_start(services: Services, user_id: int) -> AlreadyLoggedIn | LoginBlocked | None:
    """May the Telegram user start logging in? Not when logged in already, nor while blocked."""
    current = await current_account(services, user_id)
    if current is not None:
        return AlreadyLoggedIn(current)
    blocked = await user_blocked_until(services, user_id)
    return None if blocked is None else LoginBlocked(blocked)


async def log_out(services: Services, user_id: int) -> bool:
    """End the Telegram user's session, with its audit event, in one unit of work: True if they were
    logged in (an expired session counts as none, and goes too). Handled again after a crash, the step
    answers as the first time did: the session it ended is not there any more, but it was logged out."""
    async with services.uow() as uow:
        if await uow.applied_before():
            return True
        account, expired = await uow.accounts.session_lookup(user_id)
        if account is None:
            return False
        await uow.accounts.end_session(user_id)
        if not expired:
            await audit(uow, "logout", account, user_id)
        await uow.commit()
    return not expired
