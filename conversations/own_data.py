"""The logged-in customer's own data (issue 15): change the password, the e-mail, the phone, the security
question; take a copy of everything; erase the profile. Each is a form that asks the current password
first (checked, counted and limited like a login: service/password_check.py), then its own questions.

Each hook calls one use case (service/profile.py, export.py, erasure.py) and turns its outcome into a
reply. The session is looked up at the start and again before acting: a session ended meanwhile (logout,
a password recovered elsewhere, 30 days passed) ends the form.
"""

from __future__ import annotations

from typing import Any

from telegram import InputFile

from conversations import alerts, privacy, secret_guard
from conversations.form import Form
from conversations.login import minutes_until
from conversations.outcomes import Ask, Finish, Outcome, Reply
from conversations.registration import refuse_a_secret_question
from conversations.spec import Field
from conversations.specs import own_data as specs
from conversations.specs.own_data import CURRENT, ERASE
from conversations.turn import Turn
from unogas_bot import rules
from unogas_bot.domain import AccountView
from unogas_bot.service import erasure, export, profile, recovery, session
from unogas_bot.service.outcomes import (
    AccountGone,
    EmailInUse,
    Erased,
    InvalidCredentials,
    LoginLocked,
    PasswordAcceptable,
    PasswordConfirmed,
    PasswordRefused,
    ProfileChanged,
    TooManyEmailsInUse,
)
from unogas_bot.service.password_check import confirm_password

ACCOUNT = "account_id"  # the session's profile, kept in the draft when the form starts


class OwnDataForm(Form):
    """A form for a logged-in customer that asks the current password first; its spec's name says what
    for in the audit trail."""

    @property
    def purpose(self) -> str:
        return self.spec.name

    async def on_start(self, turn: Turn) -> Outcome | None:
        account = await session.current_account(turn.services, turn.user_id)
        if account is None:
            return Finish([Reply("own_data_not_logged_in")])
        turn.answers[ACCOUNT] = account.id
        shown = await privacy.new_notice_for(turn.services, turn.user_id, account)
        return Ask([shown] if shown else [])

    async def on_value(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        if step.key == CURRENT.key:
            return await self._confirm(turn, value)
        account = await self._account(turn)
        if account is None:
            return Finish([Reply("own_data_not_logged_in")])
        return await self.act(turn, step, value, account)

    async def complete(self, turn: Turn) -> Outcome:
        account = await self._account(turn)
        if account is None:
            return Finish([Reply("own_data_not_logged_in")])
        return await self.finish(turn, account)

    async def act(self, turn: Turn, step: Field, value: Any, account: AccountView) -> Outcome | None:
        """A valid answer after the password (None: ask the next question)."""
        return None

    async def finish(self, turn: Turn, account: AccountView) -> Outcome:
        """Every question is answered."""
        return Finish()

    async def _account(self, turn: Turn) -> AccountView | None:
        """The session's profile, if it is still the one the form started with."""
        account = await session.current_account(turn.services, turn.user_id)
        return account if account is not None and account.id == turn.answers.get(ACCOUNT) else None

    async def _confirm(self, turn: Turn, password: str) -> Outcome | None:
        account_id = turn.answers.get(ACCOUNT)
        if account_id is None:
            return Finish([Reply("own_data_not_logged_in")])
        match await confirm_password(turn.services, turn.user_id, account_id, password, self.purpose):
            case PasswordConfirmed():
                return None
            case InvalidCredentials() as invalid:
                alerts.stranger_failed(turn.context, invalid.stranger_on, "login")
                self.spec.forget(turn.draft, CURRENT.key)
                return Ask([Reply("current_password_wrong")], field=CURRENT.key)
            case LoginLocked(until) as locked:
                alerts.stranger_failed(turn.context, locked.stranger_on, "login")
                return Finish([Reply("login_wait", {"minutes": minutes_until(until, turn.now())})])
            case AccountGone():
                return Finish([Reply("own_data_not_logged_in")])


def _gone(outcome: object) -> Outcome:
    assert isinstance(outcome, AccountGone)
    return Finish([Reply("own_data_not_logged_in")])


class ChangePasswordForm(OwnDataForm):
    spec = specs.CHANGE_PASSWORD

    async def act(self, turn: Turn, step: Field, value: Any, account: AccountView) -> Outcome | None:
        if step.key != "password":
            return None
        if turn.services.mac.matches(value, turn.draft.digests.get(CURRENT.key)):
            # The current password again: a slip (sent twice), or no change at all.
            self.spec.forget(turn.draft, "password")
            return Ask([Reply("e_password.same_as_current")], field="password")
        match await recovery.check_new_password(turn.services, account.id, value):
            case PasswordRefused(reason, params):
                self.spec.forget(turn.draft, "password")
                return Ask([Reply(f"e_{reason}", params)], field="password")
            case PasswordAcceptable():
                return None
            case other:
                return _gone(other)

    async def finish(self, turn: Turn, account: AccountView) -> Outcome:
        outcome = await profile.change_password(
            turn.services, turn.user_id, account.id, turn.answers["password_hash"]
        )
        if isinstance(outcome, ProfileChanged):
            return Finish([Reply("password_changed")])
        return _gone(outcome)


class ChangeEmailForm(OwnDataForm):
    spec = specs.CHANGE_EMAIL

    async def act(self, turn: Turn, step: Field, value: Any, account: AccountView) -> Outcome | None:
        match await profile.change_email(turn.services, turn.user_id, account, value):
            case ProfileChanged(changed):
                return Finish([Reply("email_changed", {"email": changed.email})])
            case EmailInUse():
                self.spec.forget(turn.draft, "email")
                return Ask([Reply("email_taken")], field="email")
            case TooManyEmailsInUse():
                return Finish([Reply("change_email_too_often")])
            case other:
                return _gone(other)


class ChangePhoneForm(OwnDataForm):
    spec = specs.CHANGE_PHONE

    async def act(self, turn: Turn, step: Field, value: Any, account: AccountView) -> Outcome | None:
        outcome = await profile.change_phone(turn.services, turn.user_id, account, value)
        if not isinstance(outcome, ProfileChanged):
            return _gone(outcome)
        if value is None:
            return Finish([Reply("phone_removed")])
        return Finish([Reply("phone_changed", {"phone": rules.masks.phone(value)})])


class ChangeQuestionForm(OwnDataForm):
    spec = specs.CHANGE_QUESTION

    async def act(self, turn: Turn, step: Field, value: Any, account: AccountView) -> Outcome | None:
        if step.key == "question":
            return await refuse_a_secret_question(turn, [account.password_hash])
        return None

    async def finish(self, turn: Turn, account: AccountView) -> Outcome:
        answers = turn.answers
        outcome = await profile.change_question(
            turn.services, turn.user_id, account, answers["question"], answers["answer_hash"]
        )
        if isinstance(outcome, ProfileChanged):
            return Finish([Reply("question_changed")])
        return _gone(outcome)


class ExportForm(OwnDataForm):
    spec = specs.EXPORT

    async def finish(self, turn: Turn, account: AccountView) -> Outcome:
        document = await export.export_profile(
            turn.services, account.id, turn.user_id, turn.text("export_other_account")
        )
        if document is None:
            return Finish([Reply("own_data_not_logged_in")])
        stem = f"unogas-{account.customer_code.replace('/', '-')}"
        files = (
            (f"{stem}.json", export.as_json(document)),
            (f"{stem}.txt", export.as_text(document, turn.text("export_title"))),
        )
        for name, content in files:
            await turn.context.bot.send_document(
                turn.chat_id, InputFile(content, filename=name), filename=name
            )
        return Finish([Reply("export_sent")])


class EraseForm(OwnDataForm):
    spec = specs.ERASE_PROFILE

    async def on_value(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        if step.key == CURRENT.key:
            return await self._confirm(turn, value)
        if value != ERASE:
            return Finish([Reply("cancelled")])
        # The session is checked inside the erasure's transaction: a confirmation handled again after a
        # crash finds no session any more, and is still told the profile was erased.
        outcome = await erasure.erase_own_profile(turn.services, turn.user_id, turn.answers.get(ACCOUNT, 0))
        if isinstance(outcome, Erased):
            secret_guard.forget(turn.context.user_data)  # no digest of the erased profile's password stays
            return Finish([Reply("erased")])
        return _gone(outcome)


FORMS = (
    ChangePasswordForm(),
    ChangeEmailForm(),
    ChangePhoneForm(),
    ChangeQuestionForm(),
    ExportForm(),
    EraseForm(),
)
