"""The owner of a profile and the strangers: limits a stranger cannot turn against the owner (issue 21).

A profile trusts one Telegram account, its *owner*: the one that registered it or last logged into it
(`AccountView.owner`). For a check inside a logged-in session (re-authentication before a change, an
export or an erasure) the session's own Telegram account is trusted the same way. Every other Telegram
account is a *stranger* to the profile.

* Each Telegram account, trusted or not, has a bucket of its own per profile (a pair key): its failures
  lock only itself (`login_failures_per_account` per `login_failures_window`, `recovery_failures` per
  hour).
* Strangers' failed checks are also counted together per profile (`login_strangers_per_hour`,
  `recovery_strangers_per_hour`); past that cap strangers wait, unchecked, and the owner does not.
* The owner is told in Telegram when strangers fail against the profile, at most once per
  `owner_alert_interval` (`alert_owner`); the alert is audited ("owner_alerted") and counted in a metric.

An address or code with no profile has no owner: every Telegram account is a stranger to it, so it
behaves exactly as a registered one does for anyone who does not own it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from unogas_bot.domain import AccountView, keys
from unogas_bot.service import limits
from unogas_bot.service.audit import audit

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


def trusted(account: AccountView | None, user_id: int) -> bool:
    """Is `user_id` the profile's own Telegram account? (No profile: nobody is.)"""
    return account is not None and account.owner == user_id


async def full_until(
    uow: UnitOfWork, services: Services, kind: str, key: str, limit: int, window: timedelta
) -> datetime | None:
    """Until when the window of `kind` under `key` holds `limit` attempts (None: there is room). Room comes
    back as the oldest attempts leave the window."""
    if await uow.attempts.count_since(kind, key, window) < limit:
        return None
    oldest = await uow.attempts.oldest_in_window(kind, key, window)
    return (oldest or services.clock()) + window


async def alert_owner(services: Services, account_id: int, what: str) -> int | None:
    """A stranger failed a check of `what` ("login", "recovery") against the profile: the Telegram account
    to tell, or None when it was told within `owner_alert_interval` (one alert per burst) or the profile is
    gone. The alert is audited."""
    key = keys.account_key(account_id)
    async with services.uow() as uow:
        await uow.attempts.lock(key)
        if await uow.attempts.count_since(
            limits.OWNER_ALERTED, key, services.settings.limits.owner_alert_interval
        ):
            return None
        account = await uow.accounts.get(account_id)
        if account is None:
            return None
        await uow.attempts.add(limits.OWNER_ALERTED, key)
        await audit(
            uow,
            "owner_alerted",
            account,
            account.owner,
            f"told of failed {what} checks by another Telegram account",
        )
        await uow.commit()
    return account.owner
