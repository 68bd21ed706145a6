"""Login: e-mail, then password; success links this Telegram user to the account (see `/esci`).

The rules (what a failure tells, the limits per address and per Telegram user, the timing of unknown
addresses) live in unogas_bot/service/login.py; this form asks and turns outcomes into replies.

After a failure the password is asked again for the same address: the usual mistake is the password, and
the message says how to correct the address instead (`/indietro`), so the common case costs one message.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from conversations.form import Ask, Field, Finish, Form, Outcome, Reply, Turn
from storage.accounts import AccountView
from unogas_bot import rules
from unogas_bot.service import login
from unogas_bot.service.outcomes import InvalidCredentials, LoggedIn, LoginLocked

NAME = "login"


def minutes_until(until: datetime, now: datetime) -> int:
    """Whole minutes left, rounded up and at least 1 (a customer is never told to wait 0 minutes)."""
    return max(1, math.ceil((until - now).total_seconds() / 60))


def display_name(account: AccountView) -> str:
    return rules.names.holder(account.kind, account.first_name, account.last_name, account.company_name)


FIELDS: tuple[Field, ...] = (
    Field(
        "email",
        "q_login_email",
        "h_login_email",
        lambda t, d: rules.email.validate(t),
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
        blocked = await login.user_blocked_until(turn.services, turn.user_id)
        if blocked is not None:
            return Finish([self._wait(turn, blocked)])
        return None

    async def on_value(self, turn: Turn, field: Field, value: Any) -> Outcome | None:
        if field.key != "password":
            return None
        email = turn.draft["email"]
        match await login.log_in(turn.services, turn.user_id, email, value):
            case LoggedIn(account):
                return Finish([Reply("login_ok", {"name": display_name(account)})])
            case LoginLocked(until):
                return Finish([self._wait(turn, until)])
            case InvalidCredentials():
                return Ask([Reply("login_invalid", {"email": email})], field="password")

    def _wait(self, turn: Turn, until: datetime) -> Reply:
        return Reply("login_wait", {"minutes": minutes_until(until, turn.now())})
