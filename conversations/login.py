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

from conversations import alerts, privacy
from conversations.form import Form
from conversations.outcomes import Ask, Finish, Outcome, Reply
from conversations.spec import Field
from conversations.specs.login import SPEC
from conversations.turn import Turn
from unogas_bot import rules
from unogas_bot.domain import AccountView
from unogas_bot.service import login, session
from unogas_bot.service.outcomes import (
    AlreadyLoggedIn,
    InvalidCredentials,
    LoggedIn,
    LoginBlocked,
    LoginLocked,
)


def minutes_until(until: datetime, now: datetime) -> int:
    """Whole minutes left, rounded up and at least 1 (a customer is never told to wait 0 minutes)."""
    return max(1, math.ceil((until - now).total_seconds() / 60))


def display_name(account: AccountView) -> str:
    return rules.names.holder(account.kind, account.first_name, account.last_name, account.company_name)


NAME = SPEC.name


class LoginForm(Form):
    spec = SPEC

    async def on_start(self, turn: Turn) -> Outcome | None:
        match await session.login_start(turn.services, turn.user_id):
            case AlreadyLoggedIn(current):
                return Finish([Reply("login_already", {"email": current.email})])
            case LoginBlocked(until):
                return Finish([self._wait(turn, until)])
        return None

    async def on_value(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        if step.key != "password":
            return None
        email = turn.answers["email"]
        match await login.log_in(turn.services, turn.user_id, email, value):
            case LoggedIn(account, notice_shown):
                notes = [Reply("login_ok", {"name": display_name(account)})]
                if notice_shown:
                    notes.append(privacy.notice(turn.services, "privacy_notice_new"))
                return Finish(notes)
            case LoginLocked(until) as locked:
                alerts.stranger_failed(turn.context, locked.stranger_on, "login")
                return Finish([self._wait(turn, until)])
            case InvalidCredentials() as invalid:
                alerts.stranger_failed(turn.context, invalid.stranger_on, "login")
                return Ask([Reply("login_invalid", {"email": email})], field="password")

    def _wait(self, turn: Turn, until: datetime) -> Reply:
        return Reply("login_wait", {"minutes": minutes_until(until, turn.now())})
