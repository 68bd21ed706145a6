"""Registration: the seed's web form ("REGISTRAZIONE CLIENTE" then "DATI PER IL LOGIN") as a conversation.

Identity first (customer code, person or business, names or company name, tax code, optional phone),
checked against the customer registry before any login data is asked; then e-mail, password twice,
security question, answer twice; a summary; "Salva" writes the profile in one transaction.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from conversations.form import SUMMARY, Ask, Choice, Draft, Field, Finish, Form, Outcome, Reply, Turn
from storage.accounts import NewAccount
from storage.registry import Identity
from unogas_bot import rules
from unogas_bot.i18n import texts
from unogas_bot.rules.replies import BUSINESS, PERSON
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

NAME = "registration"


def _person(d: Draft) -> bool:
    return d.get("kind") != BUSINESS


def _business(d: Draft) -> bool:
    return d.get("kind") == BUSINESS


def personal_data_of(d: Draft) -> list[str]:
    """What a password must not contain: the customer's own data as typed so far."""
    return rules.password.personal_data(
        customer_code=d.get("customer_code"),
        tax_code=d.get("tax_code"),
        first_name=d.get("first_name"),
        last_name=d.get("last_name"),
        company_name=d.get("company_name"),
        email=d.get("email"),
    )


# Changing any of these means the identity must be checked again.
IDENTITY_CLEARS = ("verified",)

FIELDS: tuple[Field, ...] = (
    Field(
        "customer_code",
        "q_customer_code",
        "h_customer_code",
        lambda t, d: rules.customer_code.validate(t),
        label="label_customer_code",
        clears=IDENTITY_CLEARS,
        placeholder="ph_customer_code",
    ),
    Field(
        "kind",
        "q_kind",
        "h_kind",
        lambda t, d: rules.replies.parse_kind(t),
        label="label_kind",
        choices=(Choice(PERSON, "btn_person"), Choice(BUSINESS, "btn_business")),
        clears=("first_name", "last_name", "company_name", "tax_code", *IDENTITY_CLEARS),
    ),
    Field(
        "first_name",
        "q_first_name",
        "h_first_name",
        lambda t, d: rules.names.person_name(t),
        label="label_first_name",
        applies=_person,
        clears=IDENTITY_CLEARS,
        placeholder="ph_first_name",
    ),
    Field(
        "last_name",
        "q_last_name",
        "h_last_name",
        lambda t, d: rules.names.person_name(t),
        label="label_last_name",
        applies=_person,
        clears=IDENTITY_CLEARS,
        placeholder="ph_last_name",
    ),
    Field(
        "company_name",
        "q_company_name",
        "h_company_name",
        lambda t, d: rules.names.company_name(t),
        label="label_company_name",
        applies=_business,
        clears=IDENTITY_CLEARS,
        placeholder="ph_company_name",
    ),
    Field(
        "tax_code",
        lambda d: "q_tax_code_business" if _business(d) else "q_tax_code_person",
        lambda d: "h_tax_code_business" if _business(d) else "h_tax_code_person",
        lambda t, d: rules.tax_code.validate(t, d.get("kind", PERSON)),
        label="label_tax_code",
        clears=IDENTITY_CLEARS,
        placeholder="ph_tax_code",
    ),
    Field(
        "phone",
        "q_phone",
        "h_phone",
        lambda t, d: rules.phone.validate(t),
        label="label_phone",
        optional=True,
        share_contact=True,
        placeholder="ph_phone",
    ),
    Field(
        "email",
        "q_email",
        "h_email",
        lambda t, d: rules.email.validate(t),
        label="label_email",
        placeholder="ph_email",
    ),
    Field(
        "password",
        "q_password",
        "h_password",
        lambda t, d: rules.password.validate(t, personal_data_of(d)),
        label="label_password",
        secret=True,
    ),
    Field(
        "password_repeat",
        "q_password_repeat",
        "h_password_repeat",
        lambda t, d: t,
        confirms="password",
        hash_as="password_hash",
        mismatch="password_mismatch",
    ),
    Field(
        "question",
        "q_question",
        "h_question",
        lambda t, d: rules.answer.validate_question(t),
        label="label_question",
        clears=("answer",),  # the answer must not appear in the question: ask it again
        placeholder="ph_question",
    ),
    Field(
        "answer",
        "q_answer",
        "h_answer",
        lambda t, d: rules.answer.validate(t, d.get("question", "")),
        label="label_answer",
        secret=True,
    ),
    Field(
        "answer_repeat",
        "q_answer_repeat",
        "h_answer_repeat",
        lambda t, d: rules.answer.normalize(t),
        confirms="answer",
        hash_as="answer_hash",
        mismatch="answer_mismatch",
    ),
)

IDENTITY_FIELDS = ("customer_code", "kind", "first_name", "last_name", "company_name", "tax_code")
# The registry check happens once everything before this field is answered (the seed's "Avanti >>").
FIRST_LOGIN_FIELD = "email"


class RegistrationForm(Form):
    name = NAME
    fields = FIELDS
    entry_commands = ("registrati", "register")
    deep_link = "registrati"
    intro = "reg_intro"
    has_summary = True

    async def before_next(self, turn: Turn) -> Outcome | None:
        draft = turn.draft
        if draft.get("verified"):
            return None
        for f in self.applicable(draft):
            if f.key == FIRST_LOGIN_FIELD:
                return await self._verify(turn)
            if not self.is_answered(f, draft):
                return None
        return None

    async def _verify(self, turn: Turn) -> Outcome:
        draft = turn.draft
        identity = Identity(
            customer_code=draft["customer_code"],
            kind=draft["kind"],
            first_name=draft.get("first_name"),
            last_name=draft.get("last_name"),
            company_name=draft.get("company_name"),
            tax_code=draft["tax_code"],
        )
        match await registration.verify_identity(turn.services, turn.user_id, identity):
            case IdentityVerified():
                draft["verified"] = True
                return Ask([Reply("verified")])
            case IdentityMismatch(left):
                # Start again from the customer code, without saying which datum was wrong.
                for k in IDENTITY_FIELDS:
                    self.forget(draft, k)
                return Ask([Reply("mismatch", {"left": left})])
            case AlreadyRegistered():
                return Finish([Reply("already_registered")])
            case VerificationLocked():
                return Finish([Reply("verify_locked")])

    async def on_value(self, turn: Turn, field: Field, value: Any) -> Outcome | None:
        if field.key != "email":
            return None
        draft = turn.draft
        match await registration.choose_email(turn.services, turn.user_id, draft["customer_code"], value):
            case EmailAccepted():
                return None
            case EmailInUse():
                self.forget(draft, "email")
                return Ask([Reply("email_taken")], field="email")
            case TooManyEmailsInUse():
                return Finish([Reply("email_taken_too_often")])

    # summary ------------------------------------------------------------------------------------------
    def summary(self, turn: Turn) -> str:
        draft = turn.draft
        lines = []
        for f in self.applicable(draft):
            if f.label is None or f.secret:
                continue
            lines.append(turn.text("summary_line", label=turn.text(f.label), value=self._shown(turn, f.key)))
        return turn.text("summary", lines=texts.Raw("\n".join(lines)))

    def _shown(self, turn: Turn, key: str) -> str:
        value = turn.draft.get(key)
        if key == "kind":
            return turn.text(f"kind_{value}")
        if key == "tax_code":
            return rules.masks.tax_code(value)
        if key == "phone":
            return rules.masks.phone(value) if value else turn.text("phone_none")
        return str(value)

    def summary_markup(self, turn: Turn) -> InlineKeyboardMarkup:
        n = turn.draft["_n"]

        def button(text: str, action: str) -> InlineKeyboardButton:
            return InlineKeyboardButton(text, callback_data=f"{self.name}|{n}|{action}")

        rows = [[button(turn.text("btn_save"), "save"), button(turn.text("btn_cancel"), "cancel")]]
        edits = [
            button(turn.text("btn_edit", label=turn.text(f.label)), f"edit:{f.key}")
            for f in self.applicable(turn.draft)
            if f.label
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
        if action.startswith("edit:") and action[5:] in self.by_key:
            self.forget(turn.draft, action[5:])
            return Ask()
        if action == "cancel":
            return Finish([Reply("cancelled")])
        return Ask([Reply("press_save")], field=SUMMARY)  # unknown (forged) action: nothing happens

    async def _save(self, turn: Turn) -> Outcome:
        draft = turn.draft
        new = NewAccount(
            customer_code=draft["customer_code"],
            email=draft["email"],
            password_hash=draft["password_hash"],
            security_question=draft["question"],
            answer_hash=draft["answer_hash"],
            phone=draft.get("phone"),
            telegram_user_id=turn.user_id,
        )
        match await registration.register(turn.services, new):
            case Registered():
                return Finish([Reply("saved", {"email": draft["email"]})])
            case EmailInUse():
                self.forget(draft, "email")
                return Ask([Reply("save_conflict_email")], field="email")
            case TooManyEmailsInUse():
                return Finish([Reply("email_taken_too_often")])
            case CustomerTaken():
                return Finish([Reply("save_conflict_customer")])
            case CustomerGone():
                # The record left the registry after the identity check (e.g. a contract closed meanwhile).
                return Finish([Reply("customer_gone")])
