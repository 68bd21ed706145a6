"""Password recovery: e-mail and customer code, the account's own security question, a new password twice.

The security question is shown only when the e-mail and the customer code belong to the same account;
any other case gets one generic answer. The rules and limits live in unogas_bot/service/recovery.py; this
form asks and turns outcomes into replies. The answer is never kept: once it proved right, only the
engine's keyed digest stays in the draft (as for every secret), so the step counts as answered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conversations.form import Ask, Field, Finish, Form, Outcome, Reply, Turn
from conversations.login import minutes_until
from unogas_bot import rules
from unogas_bot.service import recovery
from unogas_bot.service.outcomes import (
    AccountGone,
    AnswerAccepted,
    AnswerWrong,
    IdentityMismatch,
    PasswordAcceptable,
    PasswordChanged,
    PasswordRefused,
    RecoveryLocked,
    RecoveryQuestion,
    TooManyMismatches,
)

NAME = "recovery"


def _answer(text: str, draft: dict[str, Any]) -> str:
    value = rules.answer.normalize(text)
    if not value:
        raise rules.Invalid("answer.empty")
    return value


# Changing the address or the code means the identity must be checked again.
IDENTITY_CLEARS = ("account_id",)

FIELDS: tuple[Field, ...] = (
    Field(
        "email",
        "q_rec_email",
        "h_rec_email",
        lambda t, d: rules.email.validate(t),
        clears=IDENTITY_CLEARS,
        placeholder="ph_email",
    ),
    Field(
        "customer_code",
        "q_rec_customer_code",
        "h_rec_customer_code",
        lambda t, d: rules.customer_code.validate(t),
        clears=IDENTITY_CLEARS,
        placeholder="ph_customer_code",
    ),
    # Kept only as the engine's keyed digest, and only once it proved right (a wrong one is forgotten).
    Field("answer", "q_rec_answer", "h_rec_answer", _answer, secret=True),
    Field(
        "password",
        "q_new_password",
        "h_new_password",
        # The rules that need no account; the account's own data are checked in on_value.
        lambda t, d: rules.password.validate(t),
        secret=True,
    ),
    Field(
        "password_repeat",
        "q_new_password_repeat",
        "h_new_password_repeat",
        lambda t, d: t,
        confirms="password",
        hash_as="password_hash",
        mismatch="password_mismatch",
    ),
)


class RecoveryForm(Form):
    name = NAME
    fields = FIELDS
    entry_commands = ("recupera_password", "recover")
    deep_link = "recupera_password"
    intro = "rec_intro"

    async def on_start(self, turn: Turn) -> Outcome | None:
        blocked = await recovery.mismatches_blocked_until(turn.services, turn.user_id)
        return Finish([self._too_many(turn, blocked)]) if blocked else None

    async def before_next(self, turn: Turn) -> Outcome | None:
        draft = turn.draft
        if "account_id" in draft or "email" not in draft or "customer_code" not in draft:
            return None
        match await recovery.identify(turn.services, turn.user_id, draft["email"], draft["customer_code"]):
            case RecoveryQuestion(account_id, question):
                draft["account_id"] = account_id
                return Ask([Reply("rec_question", {"question": question})])
            case IdentityMismatch(left):
                # Start again from the e-mail, without saying which datum was wrong.
                self.forget(draft, "email")
                self.forget(draft, "customer_code")
                return Ask([Reply("rec_no_match", {"left": left})])
            case TooManyMismatches(until):
                return Finish([self._too_many(turn, until)])
            case RecoveryLocked(until):
                return Finish([self._locked(turn, until)])

    async def on_value(self, turn: Turn, field: Field, value: Any) -> Outcome | None:
        account_id = turn.draft.get("account_id")
        if field.key == "answer":
            match await recovery.check_answer(turn.services, turn.user_id, account_id, value):
                case AnswerAccepted():
                    return None
                case AnswerWrong(left, question):
                    self.forget(turn.draft, "answer")
                    notes = [
                        Reply("rec_wrong_answer", {"left": left}),
                        Reply("rec_question", {"question": question}),
                    ]
                    return Ask(notes, field="answer")
                case RecoveryLocked(until):
                    return Finish([self._locked(turn, until)])
                case AccountGone():
                    return Finish([Reply("rec_gone")])
        if field.key == "password":
            match await recovery.check_new_password(turn.services, account_id, value):
                case PasswordRefused(reason, params):
                    self.forget(turn.draft, "password")
                    return Ask([Reply(f"e_{reason}", params)], field="password")
                case AccountGone():
                    return Finish([Reply("rec_gone")])
                case PasswordAcceptable():
                    return None
        return None

    async def complete(self, turn: Turn) -> Outcome:
        draft = turn.draft
        match await recovery.set_new_password(
            turn.services, turn.user_id, draft["account_id"], draft["password_hash"]
        ):
            case PasswordChanged():
                return Finish([Reply("rec_done")])
            case AccountGone():
                return Finish([Reply("rec_gone")])

    def _locked(self, turn: Turn, until: datetime) -> Reply:
        return Reply("rec_locked", {"minutes": minutes_until(until, turn.now())})

    def _too_many(self, turn: Turn, until: datetime) -> Reply:
        return Reply("rec_too_many", {"minutes": minutes_until(until, turn.now())})
