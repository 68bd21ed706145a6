"""Logging in with e-mail and password, with limits that hold however many attempts arrive at once.

An attempt goes in three steps:

1. *Reserve* (one transaction, keys locked): refuse when the Telegram user is blocked, the address is
   locked, or the window is already full of attempts; otherwise record the attempt now, as a failure.
2. *Check* the password with bcrypt, outside any transaction (0.2 s of a core must not hold a lock).
3. *Record the outcome* (one transaction): a success takes its failures back, links the session and is
   audited; a failure is audited and may lock the address or block the user.

Because the attempt is counted before it is checked, the limits are hard bounds: one Telegram user gets
`login_failures_per_account` checks per window on an address however many it sends at once, and every
Telegram user but the profile's owner together `login_strangers_per_hour` (service/strangers.py); the
owner's own bucket is never filled by anyone else. A success makes the Telegram user the profile's owner.

An unknown address takes exactly the same path (same queries, a bcrypt check of a dummy hash made at the
cost of the stored hashes) and ends in the same lock, so neither the replies nor their timing tell whether
an address is registered.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from unogas_bot.domain import AccountNotFound, AccountView
from unogas_bot.service import limits, password_check, privacy
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import InvalidCredentials, LoggedIn, LoginLocked, LoginOutcome

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


# How often the dummy hash's cost is matched again to the stored hashes' (they move to `BCRYPT_ROUNDS`
# as customers log in).
DUMMY_COST_CHECK = 3600.0


async def match_dummy_cost(services: Services) -> None:
    """Make unknown addresses cost what registered ones do: the dummy hash at the stored hashes' cost."""
    async with services.reading() as view:
        cost = await view.accounts.stored_hash_cost()
    services.hasher.use_dummy_cost(cost or services.hasher.rounds)


async def log_in(services: Services, user_id: int, email: str, password: str) -> LoginOutcome:
    """Check `password` for `email` on behalf of Telegram user `user_id`."""
    settings = services.settings
    services.hash_budget.take(user_id)
    if time.monotonic() - services.hasher.dummy_cost_set_at > DUMMY_COST_CHECK:
        await match_dummy_cost(services)  # before the first login too: the hasher starts at BCRYPT_ROUNDS

    async def find(uow: UnitOfWork) -> AccountView | None:
        return await uow.accounts.get_by_email(email)

    reservation = await password_check.reserve(  # 1. reserve
        services, user_id, find, limits.email_key(email), "login_failed"
    )
    if isinstance(reservation, LoginLocked):
        return reservation
    account = reservation.account

    stored = account.password_hash if account else None  # 2. check
    ok = await services.hasher.verify(password, stored) and account is not None
    rehashed = await services.hasher.hash(password) if ok and services.hasher.needs_rehash(stored) else None

    if ok and account is not None:  # 3. record the outcome
        async with services.uow() as uow:
            try:
                await uow.accounts.link_session(account.id, user_id, settings.limits.session_ttl)
            except AccountNotFound:  # deleted while its password was being checked
                return InvalidCredentials()
            await uow.accounts.make_owner(account.id, user_id)
            await password_check.release(uow, reservation)
            if rehashed is not None and stored is not None:
                await uow.accounts.rehash_password(account.id, stored, rehashed)
            # A privacy notice the customer has not seen is shown with the welcome: recorded here, with
            # the login, so both commit together (service/privacy.py).
            shown = await privacy.record_notice_shown(uow, services, user_id, account)
            await audit(uow, "login", account, user_id)
            if await uow.commit() is False:  # handled again after a crash: answer as the first did
                shown = await privacy.shown_with_last_login(services, user_id, account.id)
            return LoggedIn(account, notice_shown=shown)
    detail = "wrong password" if account else "unknown e-mail"
    return await password_check.record_failure(services, user_id, reservation, "login_failed", detail)
