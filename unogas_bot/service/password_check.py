"""The password check with limits, shared by login and by every logged-in action that asks for the current
password again (changing the profile, the export, the erasure).

A check goes in three steps (see service/login.py for why): `reserve` counts the attempt, as a failure,
in one transaction with the keys locked; the bcrypt check runs outside any transaction; a success gives
the reservation back (`release`, inside the caller's own unit of work, so it commits with what the
success does), a failure is recorded by `record_failure`, which may lock the pair, hold the strangers or
block the user. The counts are the login's own: a wrong current password is a wrong password, whoever
asks for it, so guessing through `/cambia_email` gains nothing over guessing through `/accedi`.

Buckets (service/strangers.py): each Telegram user has its own window per account (`LOGIN_FAILED` under
the pair key); the users the account does not trust are also counted together (`LOGIN_STRANGERS` under
the account key), and only they wait when that is full. The owner, and a logged-in session asking its
password again, are never held by anyone else's failures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from unogas_bot.domain import AccountNotFound, AccountView, keys
from unogas_bot.service import limits, strangers
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import AccountGone, InvalidCredentials, LoginLocked, PasswordConfirmed

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


@dataclass(frozen=True)
class Reservation:
    """A counted attempt, still to be checked: the account (None: unknown address), its attempt key, this
    Telegram user's key on it, whether the account trusts the user (see service/strangers.py), the ids of
    the attempts recorded for it, and whether it is the user's last try of the hour."""

    account: AccountView | None
    key: str
    pair: str
    trusted: bool
    reserved: list[int] = field(default_factory=list)
    last_try: bool = False


async def reserve(
    services: Services,
    user_id: int,
    find: Callable[[UnitOfWork], Awaitable[AccountView | None]],
    unknown_key: str,
    event: str,
    *,
    session: Callable[[], bool] | None = None,
) -> Reservation | LoginLocked:
    """Step 1: count the attempt before it is checked, or refuse it unchecked when the user is blocked,
    this user's window on the account is full, or (for a user the account does not trust) the strangers'
    window is; a refusal is audited as `event` and counted against the user. With `session` the user is
    logged into the account `find` returns (as `session()` tells once `find` ran): trusted like its owner."""
    settings = services.settings
    user = keys.telegram_key(user_id)
    async with services.uow() as uow:
        account = await find(uow)
        key = keys.account_key(account.id) if account else unknown_key
        pair = keys.pair_key(key, user_id)
        in_session = session is not None and session()
        trusted = account is not None and (in_session or strangers.trusted(account, user_id))
        await uow.attempts.lock(key, pair, user)
        blocked = await uow.attempts.held_until(limits.LOGIN_USER_LOCK, user, settings.limits.login_lock)
        if blocked is not None:
            return LoginLocked(blocked)  # not counted: the user is told to wait, nothing is checked
        locked = await _pair_locked_until(uow, services, pair)
        if locked is None and not trusted:  # the owner never waits for the strangers
            locked = _held_on_profile(services, account) or await strangers.full_until(
                uow,
                services,
                limits.LOGIN_STRANGERS,
                key,
                settings.limits.login_strangers_per_hour,
                limits.HOUR,
            )
        if locked is not None:
            # Refused unchecked, but counted against the user: cycling through locked addresses gains nothing.
            await audit(uow, event, account, user_id, "locked")
            await uow.attempts.add(limits.LOGIN_USER_FAILED, user)
            until = await _block_user_if_over(uow, services, user_id)
            await uow.commit()
            return LoginLocked(max(locked, until or locked), _stranger_on(account, trusted))
        reserved = [
            await uow.attempts.add(limits.LOGIN_USER_FAILED, user),
            await uow.attempts.add(limits.LOGIN_FAILED, pair),
        ]
        if not trusted:
            reserved.append(await uow.attempts.add(limits.LOGIN_STRANGERS, key))
        # A user whose last hour holds the limit of failures gets one try per lock period: blocked now,
        # before the check, so attempts arriving meanwhile find the block; a success lifts it again.
        last_try = await _over_user_limit(uow, services, user)
        if last_try:
            reserved.append(await uow.attempts.add(limits.LOGIN_USER_LOCK, user))
        await uow.commit()
    return Reservation(account, key, pair, trusted, reserved, last_try)


def _held_on_profile(services: Services, account: AccountView | None) -> datetime | None:
    """The strangers' hold shown on the profile (`accounts show`), while it lasts."""
    until = account.login_locked_until if account is not None else None
    return until if until is not None and until > services.clock() else None


def _stranger_on(account: AccountView | None, trusted: bool) -> int | None:
    """The profile a stranger failed against (its owner is to be told), if any."""
    return account.id if account is not None and not trusted else None


async def _pair_locked_until(uow: UnitOfWork, services: Services, pair: str) -> datetime | None:
    """Until when this Telegram user may not try this account (or address) again; None: it may."""
    s = services.settings.limits
    locked = await uow.attempts.held_until(limits.LOGIN_LOCK, pair, s.login_lock)
    if locked is None:
        failures = await uow.attempts.count_since(limits.LOGIN_FAILED, pair, s.login_failures_window)
        if failures >= s.login_failures_per_account:  # the limit is taken by attempts still being checked
            locked = services.clock() + s.login_lock
    return locked


async def release(uow: UnitOfWork, reservation: Reservation) -> None:
    """A success: the attempt does not count, nor do this user's earlier failures on the account (the
    strangers' count stays: the owner's success must not give them new tries)."""
    await uow.attempts.take_back(reservation.reserved)
    await uow.attempts.clear(limits.LOGIN_FAILED, reservation.pair)


async def record_failure(
    services: Services, user_id: int, reservation: Reservation, event: str, detail: str
) -> InvalidCredentials | LoginLocked:
    """Step 3 of a wrong password: audit it, and lock the pair, hold the strangers or block the user when
    over a limit."""
    settings, now = services.settings, services.clock()
    account, key, pair = reservation.account, reservation.key, reservation.pair
    async with services.uow() as uow:
        await uow.attempts.lock(key, pair, keys.telegram_key(user_id))
        if not reservation.trusted and account is not None:
            detail = f"{detail} (another Telegram account)"
        await audit(uow, event, account, user_id, detail)
        locked = await _lock_pair_if_over(uow, services, pair, account, user_id)
        if not reservation.trusted:
            held = await _hold_strangers_if_over(uow, services, key, account, user_id)
            locked = max(t for t in (locked, held) if t is not None) if locked or held else None
        until = (
            now + settings.limits.login_lock
            if reservation.last_try
            else await _block_user_if_over(uow, services, user_id)
        )
        await uow.commit()
    stranger_on = _stranger_on(account, reservation.trusted)
    if locked is None and until is None:
        return InvalidCredentials(stranger_on)
    return LoginLocked(max(t for t in (locked, until) if t is not None), stranger_on)


async def confirm_password(
    services: Services, user_id: int, account_id: int, password: str, purpose: str
) -> PasswordConfirmed | InvalidCredentials | LoginLocked | AccountGone:
    """The logged-in customer's current password, asked again before `purpose` (an audit detail such as
    "change_email"): counted like a login to the same account, in the session's own bucket, which no other
    Telegram account's failures fill. A user with no live session on the account is a stranger to it."""
    services.hash_budget.take(user_id)
    in_session = [False]

    async def find(uow: UnitOfWork) -> AccountView | None:
        current, expired = await uow.accounts.session_lookup(user_id)
        if current is not None and current.id == account_id and not expired:
            in_session[0] = True
            return current
        return await uow.accounts.get(account_id)

    reservation = await reserve(
        services,
        user_id,
        find,
        keys.account_key(account_id),
        "reauth_failed",
        session=lambda: in_session[0],
    )
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
    s = services.settings.limits
    failures = await uow.attempts.count_since(limits.LOGIN_USER_FAILED, user, s.login_user_window)
    return failures > s.login_failures_per_user  # the attempt being reserved is counted already


async def _lock_pair_if_over(
    uow: UnitOfWork, services: Services, pair: str, account: AccountView | None, user_id: int
) -> datetime | None:
    """Lock this user out of the account (or address) once its window holds the limit of failures;
    returns until when."""
    s, now = services.settings.limits, services.clock()
    failures = await uow.attempts.count_since(limits.LOGIN_FAILED, pair, s.login_failures_window)
    if failures < s.login_failures_per_account:
        return None
    held = await uow.attempts.held_until(limits.LOGIN_LOCK, pair, s.login_lock)
    if held is not None:
        return held
    await uow.attempts.add(limits.LOGIN_LOCK, pair)
    if account is not None:  # shown by the support tools (`accounts show`)
        await audit(
            uow, "login_locked", account, user_id, f"{failures} failed logins by this Telegram account"
        )
    return now + s.login_lock


async def _hold_strangers_if_over(
    uow: UnitOfWork, services: Services, key: str, account: AccountView | None, user_id: int
) -> datetime | None:
    """Once the strangers' window of the account is full, until when they wait (the owner does not). The
    first time, the hold is shown on the profile (`accounts show`; `accounts unlock` lifts it), audited."""
    s = services.settings.limits
    until = await strangers.full_until(
        uow, services, limits.LOGIN_STRANGERS, key, s.login_strangers_per_hour, limits.HOUR
    )
    if until is None or account is None:
        return until
    current = account.login_locked_until
    if current is None or current < services.clock():
        try:
            await uow.accounts.set_login_lock(account.id, until)
        except AccountNotFound:  # erased meanwhile
            return until
        await audit(
            uow,
            "login_strangers_held",
            account,
            user_id,
            f"{s.login_strangers_per_hour} failed logins by other Telegram accounts in an hour: they wait",
        )
    return until


async def _block_user_if_over(uow: UnitOfWork, services: Services, user_id: int) -> datetime | None:
    """Block the Telegram user while the last hour holds the limit of failures (each further failure
    blocks again, so a persistent guesser gets one try per lock period)."""
    s = services.settings.limits
    user = keys.telegram_key(user_id)
    failures = await uow.attempts.count_since(limits.LOGIN_USER_FAILED, user, s.login_user_window)
    if failures < s.login_failures_per_user:
        return None
    await uow.attempts.add(limits.LOGIN_USER_LOCK, user)
    await audit(uow, "login_throttled", None, user_id, f"{failures} failed logins in the window")
    return services.clock() + s.login_lock
