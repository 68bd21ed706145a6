"""Registration: the seed's web form ("REGISTRAZIONE CLIENTE" then "DATI PER IL LOGIN") as a conversation.

CustomerRecord first (customer code, person or business, names or company name, tax code, optional phone),
checked against the customer registry before any login data is asked; then e-mail, password twice,
security question, answer twice; a summary; "Salva" writes the profile in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from conversations import privacy, secret_guard
from conversations.form import Form
from conversations.outcomes import Ask, Finish, Outcome, Reply
from conversations.spec import SUMMARY, Checkpoint, Field
from conversations.specs.registration import SPEC
from conversations.turn import Turn
from unogas_bot import rules
from unogas_bot.domain import CustomerRecord, NewAccount, customer_code_key
from unogas_bot.i18n import texts
from unogas_bot.security.hash_budget import HashBudgetExceeded
from unogas_bot.service import privacy as privacy_service
from unogas_bot.service import registration
from unogas_bot.service.outcomes import (
    AlreadyRegistered,
    CustomerGone,
    CustomerTaken,
    EmailAccepted,
    EmailInUse,
    IdentityMismatch,
    IdentityVerified,
    Registered,
    TooManyEmailsInUse,
    VerificationLocked,
)

NAME = SPEC.name
VERIFIED_AS = "verified_as"  # the code key of the customer the identity check last established


class RegistrationForm(Form):
    spec = SPEC

    async def on_start(self, turn: Turn) -> Outcome | None:
        return Ask([Reply("reg_intro"), privacy.notice(turn.services)])

    async def on_checkpoint(self, turn: Turn, checkpoint: Checkpoint) -> Outcome:
        answers = turn.answers
        identity = CustomerRecord(
            customer_code=answers["customer_code"],
            kind=answers["kind"],
            first_name=answers.get("first_name"),
            last_name=answers.get("last_name"),
            company_name=answers.get("company_name"),
            tax_code=answers["tax_code"],
        )
        match await registration.verify_identity(turn.services, turn.user_id, identity):
            case IdentityVerified(record):
                verified_as = customer_code_key(record.customer_code)
                if answers.get(VERIFIED_AS, verified_as) != verified_as:
                    self.spec.forget_dependants(turn.draft, checkpoint)
                answers[VERIFIED_AS] = verified_as
                answers["customer_code"] = record.customer_code  # as printed on the bill, "UG-100234"
                answers[checkpoint.key] = True
                return Ask([Reply("verified")])
            case IdentityMismatch(left):
                # Start again from the customer code, without saying which datum was wrong, and without
                # anything given for the identity that did not match.
                self.spec.forget(turn.draft, *checkpoint.checks)
                self.spec.forget_dependants(turn.draft, checkpoint)
                answers.pop(VERIFIED_AS, None)
                return Ask([Reply("mismatch", {"left": left})])
            case AlreadyRegistered():
                return Finish([Reply("already_registered")])
            case VerificationLocked():
                return Finish([Reply("verify_locked")])

    async def on_value(self, turn: Turn, step: Field, value: Any) -> Outcome | None:
        if step.key == "privacy":
            version, at = privacy_service.acknowledged_now(turn.services)
            turn.answers.update(privacy_version=version, privacy_at=at.isoformat())
            return None
        if step.key == "question":
            return await refuse_a_secret_question(turn, [turn.answers.get("password_hash", "")])
        if step.key != "email":
            return None
        customer_code = turn.answers["customer_code"]
        match await registration.choose_email(turn.services, turn.user_id, customer_code, value):
            case EmailAccepted():
                return None
            case EmailInUse():
                self.spec.forget(turn.draft, "email")
                return Ask([Reply("email_taken")], field="email")
            case TooManyEmailsInUse():
                return Finish([Reply("email_taken_too_often")])

    # summary ------------------------------------------------------------------------------------------
    def summary(self, turn: Turn) -> str:
        lines = [
            turn.text(
                "summary_line", label=turn.text(self.spec.label_key(step)), value=self._shown(turn, step)
            )
            for step in self.spec.applicable(turn.answers)
            if step.in_summary and not step.secret
        ]
        return turn.text("summary", lines=texts.Raw("\n".join(lines)))

    def _shown(self, turn: Turn, step: Field) -> str:
        value = turn.answers.get(step.key)
        if step.key == "kind":
            return turn.text(f"kind_{value}")
        if step.key == "tax_code":
            return rules.masks.tax_code(value)
        if step.key == "phone":
            return rules.masks.phone(value) if value else turn.text("phone_none")
        return str(value)

    def summary_markup(self, turn: Turn) -> InlineKeyboardMarkup:
        def button(text: str, action: str) -> InlineKeyboardButton:
            return InlineKeyboardButton(text, callback_data=self.callback_data(turn, action))

        rows = [[button(turn.text("btn_save"), "save"), button(turn.text("btn_cancel"), "cancel")]]
        edits = [
            button(turn.text("btn_edit", label=turn.text(self.spec.label_key(step))), f"edit:{step.key}")
            for step in self.spec.applicable(turn.answers)
            if step.in_summary
        ]
        rows += [edits[i : i + 2] for i in range(0, len(edits), 2)]
        return InlineKeyboardMarkup(rows)

    def summary_action(self, text: str) -> str | None:
        word = text.strip().casefold()
        if word in {"salva", "save"}:
            return "save"
        if word in {"annulla", "cancel"}:
            return "cancel"
        return None

    async def on_summary(self, turn: Turn, action: str) -> Outcome:
        if action == "save":
            return await self._save(turn)
        if action.startswith("edit:") and action[5:] in self.spec.by_key:
            self.spec.forget(turn.draft, action[5:])
            return Ask()
        if action == "cancel":
            return Finish([Reply("cancelled")])
        return Ask([Reply("press_save")], field=SUMMARY)  # unknown (forged) action: nothing happens

    async def _save(self, turn: Turn) -> Outcome:
        answers = turn.answers
        new = NewAccount(
            customer_code=answers["customer_code"],
            email=answers["email"],
            password_hash=answers["password_hash"],
            security_question=answers["question"],
            answer_hash=answers["answer_hash"],
            phone=answers.get("phone"),
            telegram_user_id=turn.user_id,
            privacy_version=answers.get("privacy_version"),
            privacy_acknowledged_at=_when(answers.get("privacy_at")),
        )
        match await registration.register(turn.services, new):
            case Registered():
                return Finish([Reply("saved", {"email": answers["email"]})])
            case EmailInUse():
                self.spec.forget(turn.draft, "email")
                return Ask([Reply("save_conflict_email")], field="email")
            case TooManyEmailsInUse():
                return Finish([Reply("email_taken_too_often")])
            case CustomerTaken():
                return Finish([Reply("save_conflict_customer")])
            case CustomerGone():
                # The record left the registry after the identity check (e.g. a contract closed meanwhile).
                return Finish([Reply("customer_gone")])


async def refuse_a_secret_question(turn: Turn, hashes: list[str]) -> Outcome | None:
    """A security question equal to the password or the answer would show it to anyone who asks to
    recover the password: refused, and the message deleted (also after a restart, when the secret guard
    cannot compare it any more)."""
    message = turn.update.effective_message
    typed = message.text if message is not None and message.text else turn.answers.get("question", "")
    try:
        secret = await secret_guard.typed_a_secret(
            turn.services, turn.user_id, turn.draft, typed, [h for h in hashes if h]
        )
    except HashBudgetExceeded:
        # Not checked (the customer is asked to wait): it may be the password, so it goes from the chat.
        if message is not None:
            await secret_guard.delete(turn.context, message.chat_id, message.message_id)
        raise
    if not secret:
        return None
    if message is not None:
        await secret_guard.delete(turn.context, message.chat_id, message.message_id)
    turn.form.spec.forget(turn.draft, "question")
    return Ask([Reply("e_question.is_secret")], field="question")


def _when(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None
