"""Logging in with e-mail and password, with limits that hold however many attempts arrive at once.

An attempt goes in three steps:

1. *Reserve* (one transaction, keys locked): refuse when the Telegram user is blocked, the address is
   locked, or the window is already full of attempts; otherwise record the attempt now, as a failure.
2. *Check* the password with bcrypt, outside any transaction (0.2 s of a core must not hold a lock).
3. *Record the outcome* (one transaction): a success takes its failures back, links the session and is
   audited; a failure is audited and may lock the address or block the user.

Because the attempt is counted before it is checked, `login_failures_per_account` checks per window is a
hard bound: the 30th of 30 simultaneous guesses finds the first 5 already counted.

An unknown address takes exactly the same path (same queries, a bcrypt check of a dummy hash made at the
cost of the stored hashes) and ends in the same lock, so neither the replies nor their timing tell whether
an address is registered.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from storage.accounts import AccountNotFound, AccountView
from unogas_bot.service import limits
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import InvalidCredentials, LoggedIn, LoginLocked, LoginOutcome

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


async def user_blocked_until(services: Services, user_id: int) -> datetime | None:
    """Until when the Telegram user may not try to log in (None: they may)."""
    async with services.uow() as uow:
        return await uow.attempts.held_until(
            limits.LOGIN_USER_LOCK, limits.telegram_key(user_id), services.settings.login_lock
        )


# How often the dummy hash's cost is matched again to the stored hashes' (they move to `BCRYPT_ROUNDS`
# as customers log in).
DUMMY_COST_CHECK = 3600.0


async def match_dummy_cost(services: Services) -> None:
    """Make unknown addresses cost what registered ones do: the dummy hash at the stored hashes' cost."""
    cost = await services.accounts.stored_hash_cost()
    services.hasher.use_dummy_cost(cost or services.hasher.rounds)


async def log_in(services: Services, user_id: int, email: str, password: str) -> LoginOutcome:
    """Check `password` for `email` on behalf of Telegram user `user_id`."""
    settings, now = services.settings, services.clock()
    services.hash_budget.take(user_id)
    if time.monotonic() - services.hasher.dummy_cost_set_at > DUMMY_COST_CHECK:
        await match_dummy_cost(services)  # before the first login too: the hasher starts at BCRYPT_ROUNDS
    user = limits.telegram_key(user_id)

    async with services.uow() as uow:  # 1. reserve
        account = await uow.accounts.get_by_email(email)
        key = limits.account_key(account.id) if account else limits.email_key(email)
        await uow.attempts.lock(key, user)
        blocked = await uow.attempts.held_until(limits.LOGIN_USER_LOCK, user, settings.login_lock)
        if blocked is not None:
            return LoginLocked(blocked)  # not counted: the user is told to wait, nothing is checked
        locked = await uow.attempts.held_until(limits.LOGIN_LOCK, key, settings.login_lock)
        failures = await uow.attempts.count_since(limits.LOGIN_FAILED, key, settings.login_failures_window)
        if locked is None and failures >= settings.login_failures_per_account:
            locked = now + settings.login_lock  # the limit is taken by attempts still being checked
        if locked is not None:
            # Refused unchecked, but counted against the user: cycling through locked addresses gains nothing.
            await audit(uow, "login_failed", account, user_id, "locked")
            await uow.attempts.add(limits.LOGIN_USER_FAILED, user)
            until = await _block_user_if_over(uow, services, user_id, account)
            await uow.commit()
            return LoginLocked(max(locked, until or locked))
        reserved = [await uow.attempts.add(limits.LOGIN_USER_FAILED, user)]
        await uow.attempts.add(limits.LOGIN_FAILED, key)
        # A user whose last hour holds the limit of failures gets one try per lock period: blocked now,
        # before the check, so attempts arriving meanwhile find the block; a success lifts it again.
        last_try = await _over_user_limit(uow, services, user)
        if last_try:
            reserved.append(await uow.attempts.add(limits.LOGIN_USER_LOCK, user))
        await uow.commit()

    stored = account.password_hash if account else None  # 2. check
    ok = await services.hasher.verify(password, stored) and account is not None
    rehashed = await services.hasher.hash(password) if ok and services.hasher.needs_rehash(stored) else None

    async with services.uow() as uow:  # 3. record the outcome
        if ok and account is not None:
            try:
                await uow.accounts.link_session(account.id, user_id, settings.session_ttl)
            except AccountNotFound:  # deleted while its password was being checked
                return InvalidCredentials()
            await uow.attempts.take_back(reserved)
            await uow.attempts.clear(limits.LOGIN_FAILED, key)
            if rehashed is not None and stored is not None:
                await uow.accounts.rehash_password(account.id, stored, rehashed)
            await audit(uow, "login", account, user_id)
            await uow.commit()
            return LoggedIn(account)
        await uow.attempts.lock(key, user)
        await audit(uow, "login_failed", account, user_id, "wrong password" if account else "unknown e-mail")
        locked = await _lock_address_if_over(uow, services, key, account, user_id)
        until = (
            now + settings.login_lock
            if last_try
            else await _block_user_if_over(uow, services, user_id, account)
        )
        await uow.commit()
    if locked is None and until is None:
        return InvalidCredentials()
    return LoginLocked(max(t for t in (locked, until) if t is not None))


async def _over_user_limit(uow: UnitOfWork, services: Services, user: str) -> bool:
    s = services.settings
    failures = await uow.attempts.count_since(limits.LOGIN_USER_FAILED, user, s.login_user_window)
    return failures > s.login_failures_per_user  # the attempt being reserved is counted already


async def _lock_address_if_over(
    uow: UnitOfWork, services: Services, key: str, account: AccountView | None, user_id: int
) -> datetime | None:
    """Lock the address once its window holds the limit of failures; returns until when it is locked."""
    s, now = services.settings, services.clock()
    failures = await uow.attempts.count_since(limits.LOGIN_FAILED, key, s.login_failures_window)
    if failures < s.login_failures_per_account:
        return None
    held = await uow.attempts.held_until(limits.LOGIN_LOCK, key, s.login_lock)
    if held is not None:
        return held
    await uow.attempts.add(limits.LOGIN_LOCK, key)
    if account is not None:  # shown and lifted by the support tools (`accounts show|unlock`)
        await uow.accounts.set_login_lock(account.id, now + s.login_lock)
        await audit(uow, "login_locked", account, user_id, f"{failures} failed logins")
    return now + s.login_lock


async def _block_user_if_over(
    uow: UnitOfWork, services: Services, user_id: int, account: AccountView | None
) -> datetime | None:
    """Block the Telegram user while the last hour holds the limit of failures (each further failure
    blocks again, so a persistent guesser gets one try per lock period)."""
    s = services.settings
    user = limits.telegram_key(user_id)
    failures = await uow.attempts.count_since(limits.LOGIN_USER_FAILED, user, s.login_user_window)
    if failures < s.login_failures_per_user:
        return None
    await uow.attempts.add(limits.LOGIN_USER_LOCK, user)
    await audit(uow, "login_throttled", None, user_id, f"{failures} failed logins in the window")
    return services.clock() + s.login_lock
