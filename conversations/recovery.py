"""Password recovery: e-mail and customer code, the account's own security question, a new password twice.

The security question is shown only when the e-mail and the customer code belong to the same account;
any other case gets one generic answer. The rules and limits live in unogas_bot/service/recovery.py; this
form asks and turns outcomes into replies. The answer is never kept: once it proved right, only the
engine's keyed digest stays in the draft (as for every secret), so the step counts as answered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conversations import alerts
from conversations.form import Form
from conversations.login import minutes_until
from conversations.outcomes import Ask, Finish, Outcome, Reply
from conversations.spec import Checkpoint, Field
from conversations.specs.recovery import IDENTITY, SPEC
from conversations.turn import Turn
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

NAME = SPEC.name


class RecoveryForm(Form):
    spec = SPEC

    async def on_start(self, turn: Turn) -> Outcome | None:
        blocked = await recovery.mismatches_blocked_until(turn.services, turn.user_id)
        return Finish([self._too_many(turn, blocked)]) if blocked else None

    async def on_checkpoint(self, turn: Turn, checkpoint: Checkpoint) -> Outcome:
        answers = turn.answers
        match await recovery.identify(
            turn.services, turn.user_id, answers["email"], answers["customer_code"]
        ):
            case RecoveryQuestion(account_id, question):
                answers[checkpoint.key] = account_id
                return Ask([Reply("rec_question", {"question": question})])
            case IdentityMismatch(left):
                # Start again from the e-mail, without saying which datum was wrong.
                self.spec.forget(turn.draft, *checkpoint.checks)
                return Ask([Reply("rec_no_match", {"left": left})])
            case TooManyMismatches(until):
                return Finish([self._too_many(turn, until)])
            case RecoveryLocked(until):
                return Finish([self._locked(turn, until)])

    async def on_value(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        account_id = turn.answers.get(IDENTITY.key)
        if step.key == "answer":
            match await recovery.check_answer(turn.services, turn.user_id, account_id, value):
                case AnswerAccepted():
                    return None
                case AnswerWrong(left, question) as wrong:
                    alerts.stranger_failed(turn.context, wrong.stranger_on, "recovery")
                    self.spec.forget(turn.draft, "answer")
                    notes = [
                        Reply("rec_wrong_answer", {"left": left}),
                        Reply("rec_question", {"question": question}),
                    ]
                    return Ask(notes, field="answer")
                case RecoveryLocked(until) as locked:
                    alerts.stranger_failed(turn.context, locked.stranger_on, "recovery")
                    return Finish([self._locked(turn, until)])
                case AccountGone():
                    return Finish([Reply("rec_gone")])
        if step.key == "password":
            match await recovery.check_new_password(turn.services, account_id, value):
                case PasswordRefused(reason, params):
                    self.spec.forget(turn.draft, "password")
                    return Ask([Reply(f"e_{reason}", params)], field="password")
                case AccountGone():
                    return Finish([Reply("rec_gone")])
                case PasswordAcceptable():
                    return None
        return None

    async def complete(self, turn: Turn) -> Outcome:
        answers = turn.answers
        match await recovery.set_new_password(
            turn.services, turn.user_id, answers[IDENTITY.key], answers["password_hash"]
        ):
            case PasswordChanged():
                return Finish([Reply("rec_done")])
            case AccountGone():
                return Finish([Reply("rec_gone")])

    def _locked(self, turn: Turn, until: datetime) -> Reply:
        return Reply("rec_locked", {"minutes": minutes_until(until, turn.now())})

    def _too_many(self, turn: Turn, until: datetime) -> Reply:
        return Reply("rec_too_many", {"minutes": minutes_until(until, turn.now())})
