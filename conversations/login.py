"""Login: e-mail, then password; success links this Telegram user to the account (see `/esci`).

What a failure tells: only that the credentials are not valid. An unknown e-mail costs a bcrypt check
against a dummy hash, counts toward the same limits and ends in the same lock as a wrong password, so
neither the replies nor their timing tell whether an address is registered.

After a failure the password is asked again for the same address: the usual mistake is the password, and
the message says how to correct the address instead (`/indietro`), so the common case costs one message.

Limits (numbers in `Settings`), all kept in the database so a restart does not reset them:

* per address: `login_failures_per_account` failures within `login_failures_window` lock it for
  `login_lock`. A registered address is locked in the account row (lifted by `accounts unlock`); an
  unknown one gets the very same treatment through the attempt log, so a lock does not reveal an account.
* per Telegram user, across addresses: `login_failures_per_user` failures within `login_user_window`
  block the user for `login_lock`; while the hour still holds that many failures, each further failure
  blocks again, so a persistent guesser gets one try per lock period.

Refused attempts do no bcrypt work, whatever the address: a locked account and an emulated lock take the
same path. Even the right password is refused while locked. An attempt refused because the address is
locked still counts toward the user's limit (a guesser gains nothing by cycling through locked addresses);
one refused because the user is blocked does not.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any

from conversations.audit import audit
from conversations.form import Ask, Field, Finish, Form, Outcome, Reply, Turn
from storage.accounts import AccountView
from storage.attempts import account_key, telegram_key
from unogas_bot import validation

NAME = "login"

# Attempt kinds (storage/attempts.py). Failures are keyed per account (`account_key`, cleared by `unlock`
# and `delete`) or, for an unknown address, per `email_key`; user-level entries per `telegram_key`.
FAILED = "login_account"
EMAIL_LOCK = "login_email_lock"  # the emulated lock of an unknown address: one entry when it starts
USER_FAILED = "login_user"
USER_LOCK = "login_user_lock"  # one entry each time the Telegram user is blocked


def email_key(email: str) -> str:
    """The attempt key of an address without an account (a digest: typed addresses are not kept)."""
    return "email:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def minutes_until(until: datetime, now: datetime) -> int:
    """Whole minutes left, rounded up and at least 1 (a customer is never told to wait 0 minutes)."""
    return max(1, math.ceil((until - now).total_seconds() / 60))


def display_name(account: AccountView) -> str:
    if account.kind == "business":
        return account.company_name or ""
    return f"{account.first_name} {account.last_name}"


FIELDS: tuple[Field, ...] = (
    Field(
        "email",
        "q_login_email",
        "h_login_email",
        lambda t, d: validation.email(t),
        placeholder="ph_email",
    ),
    Field(
        "password",
        "q_login_password",
        "h_login_password",
        lambda t, d: t,  # any stored password may be typed: the registration rules do not apply here
        secret=True,
        consume=True,
    ),
)


class LoginForm(Form):
    name = NAME
    fields = FIELDS
    entry_commands = ("accedi", "login")
    deep_link = "accedi"

    async def on_start(self, turn: Turn) -> Outcome | None:
        current = await turn.services.accounts.session_account(turn.user_id)
        if current is not None:
            return Finish([Reply("login_already", {"email": current.email})])
        blocked = await self._user_blocked_until(turn)
        if blocked is not None:
            return Finish([self._wait(turn, blocked)])
        return None

    async def on_value(self, turn: Turn, field: Field, value: Any) -> Outcome | None:
        if field.key != "password":
            return None
        return await self._check(turn, turn.draft["email"], value)

    # the check --------------------------------------------------------------------------------------
    async def _check(self, turn: Turn, email: str, password: str) -> Outcome:
        services = turn.services
        blocked = await self._user_blocked_until(turn)
        if blocked is not None:
            return Finish([self._wait(turn, blocked)])
        account = await services.accounts.get_by_email(email)
        locked = await self._address_locked_until(turn, email, account)
        if locked is not None:
            await self._failed(turn, account, "locked")
            user_blocked = await self._count_user_failure(turn)
            return Finish([self._wait(turn, max(locked, user_blocked or locked))])

        # The one bcrypt check; a dummy hash when there is no account (same time, always False).
        ok = await services.hasher.verify(password, account.password_hash if account else None)
        if ok and account is not None:
            return await self._succeed(turn, account)

        await self._failed(turn, account, "wrong password" if account else "unknown e-mail")
        key = account_key(account.id) if account else email_key(email)
        await services.attempts.record(FAILED, key)
        settings = services.settings
        if await services.attempts.count_since(FAILED, key, settings.login_failures_window) >= (
            settings.login_failures_per_account
        ):
            until = await self._lock_address(turn, email, account)
            user_blocked = await self._count_user_failure(turn)
            return Finish([self._wait(turn, max(until, user_blocked or until))])
        user_blocked = await self._count_user_failure(turn)
        if user_blocked is not None:
            return Finish([self._wait(turn, user_blocked)])
        return Ask([Reply("login_invalid", {"email": email})], field="password")

    async def _succeed(self, turn: Turn, account: AccountView) -> Outcome:
        services = turn.services
        await services.accounts.link_session(account.id, turn.user_id, services.settings.session_ttl)
        await services.attempts.clear(FAILED, account_key(account.id))
        await audit(turn, "login", account)
        return Finish([Reply("login_ok", {"name": display_name(account)})])

    async def _failed(self, turn: Turn, account: AccountView | None, detail: str) -> None:
        await audit(turn, "login_failed", account, detail)

    # locks ------------------------------------------------------------------------------------------
    async def _address_locked_until(
        self, turn: Turn, email: str, account: AccountView | None
    ) -> datetime | None:
        now, lock = turn.now(), turn.services.settings.login_lock
        if account is not None:
            until = account.login_locked_until
            return until if until is not None and until > now else None
        started = await turn.services.attempts.oldest_in_window(EMAIL_LOCK, email_key(email), lock)
        return started + lock if started is not None else None

    async def _lock_address(self, turn: Turn, email: str, account: AccountView | None) -> datetime:
        services = turn.services
        until = turn.now() + services.settings.login_lock
        if account is None:
            await services.attempts.record(EMAIL_LOCK, email_key(email))
            return until
        await services.accounts.set_login_lock(account.id, until)
        failures = services.settings.login_failures_per_account
        await audit(turn, "login_locked", account, f"{failures} failed logins")
        return until

    async def _user_blocked_until(self, turn: Turn) -> datetime | None:
        lock = turn.services.settings.login_lock
        started = await turn.services.attempts.oldest_in_window(USER_LOCK, telegram_key(turn.user_id), lock)
        return started + lock if started is not None else None

    async def _count_user_failure(self, turn: Turn) -> datetime | None:
        """Record a failure of this Telegram user; block the user when over the limit (returns until)."""
        services, settings = turn.services, turn.services.settings
        key = telegram_key(turn.user_id)
        await services.attempts.record(USER_FAILED, key)
        failures = await services.attempts.count_since(USER_FAILED, key, settings.login_user_window)
        if failures < settings.login_failures_per_user:
            return None
        await services.attempts.record(USER_LOCK, key)
        await audit(turn, "login_throttled", detail=f"{failures} failed logins in the window")
        return turn.now() + settings.login_lock

    def _wait(self, turn: Turn, until: datetime) -> Reply:
        return Reply("login_wait", {"minutes": minutes_until(until, turn.now())})
