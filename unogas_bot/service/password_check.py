"""The password check with limits, shared by login and by every logged-in action that asks for the current
password again (changing the profile, the export, the erasure).

A check goes in three steps (see service/login.py for why): `reserve` counts the attempt, as a failure,
in one transaction with the keys locked; the bcrypt check runs outside any transaction; a success gives
the reservation back (`release`, inside the caller's own unit of work, so it commits with what the
success does), a failure is recorded by `record_failure`, which may lock the address or block the user.
The counts are the login's own: a wrong current password is a wrong password, whoever asks for it, so
guessing through `/cambia_email` gains nothing over guessing through `/accedi`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from storage.accounts import AccountView
from unogas_bot.service import limits
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import AccountGone, InvalidCredentials, LoginLocked, PasswordConfirmed

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


@dataclass(frozen=True)
class Reservation:
    """A counted attempt, still to be checked: the account (None: unknown address), its attempt key, the
    ids of the attempts recorded for it, and whether it is the user's last try of the hour."""

    account: AccountView | None
    key: str
    reserved: list[int] = field(default_factory=list)
    last_try: bool = False


async def reserve(
    services: Services,
    user_id: int,
    find: Callable[[UnitOfWork], Awaitable[AccountView | None]],
    unknown_key: str,
    event: str,
) -> Reservation | LoginLocked:
    """Step 1: count the attempt before it is checked, or refuse it unchecked when the user is blocked or
    the account's window is full (a refusal is audited as `event` and counted against the user)."""
    settings, now = services.settings, services.clock()
    user = limits.telegram_key(user_id)
    async with services.uow() as uow:
        account = await find(uow)
        key = limits.account_key(account.id) if account else unknown_key
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
            await audit(uow, event, account, user_id, "locked")
            await uow.attempts.add(limits.LOGIN_USER_FAILED, user)
            until = await _block_user_if_over(uow, services, user_id)
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
    return Reservation(account, key, reserved, last_try)


async def release(uow: UnitOfWork, reservation: Reservation) -> None:
    """A success: the attempt does not count, nor do the account's earlier failures."""
    await uow.attempts.take_back(reservation.reserved)
    await uow.attempts.clear(limits.LOGIN_FAILED, reservation.key)


async def record_failure(
    services: Services, user_id: int, reservation: Reservation, event: str, detail: str
) -> InvalidCredentials | LoginLocked:
    """Step 3 of a wrong password: audit it, and lock the address or block the user when over a limit."""
    settings, now = services.settings, services.clock()
    account, key = reservation.account, reservation.key
    async with services.uow() as uow:
        await uow.attempts.lock(key, limits.telegram_key(user_id))
        await audit(uow, event, account, user_id, detail)
        locked = await _lock_address_if_over(uow, services, key, account, user_id)
        until = (
            now + settings.login_lock
            if reservation.last_try
            else await _block_user_if_over(uow, services, user_id)
        )
        await uow.commit()
    if locked is None and until is None:
        return InvalidCredentials()
    return LoginLocked(max(t for t in (locked, until) if t is not None))


async def confirm_password(
    services: Services, user_id: int, account_id: int, password: str, purpose: str
) -> PasswordConfirmed | InvalidCredentials | LoginLocked | AccountGone:
    """The logged-in customer's current password, asked again before `purpose` (an audit detail such as
    "change_email"): counted and limited exactly like a login to the same account."""
    services.hash_budget.take(user_id)

    async def find(uow: UnitOfWork) -> AccountView | None:
        return await uow.accounts.get(account_id)

    reservation = await reserve(services, user_id, find, limits.account_key(account_id), "reauth_failed")
    if isinstance(reservation, LoginLocked):
        return reservation
    account = reservation.account
    if account is None:
        return AccountGone()
    if await services.hasher.verify(password, account.password_hash):
        async with services.uow() as uow:
            await release(uow, reservation)
            await uow.commit()
        return PasswordConfirmed(account)
    return await record_failure(services, user_id, reservation, "reauth_failed", f"{purpose}: wrong password")


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


async def _block_user_if_over(uow: UnitOfWork, services: Services, user_id: int) -> datetime | None:
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
