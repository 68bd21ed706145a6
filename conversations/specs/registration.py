"""What the registration asks, and in which order (the hooks that check it: conversations/registration.py)."""

from __future__ import annotations

from conversations.draft import Answers
from conversations.spec import Checkpoint, Field, FormSpec, Notice, SecretPair
from conversations.specs import privacy
from unogas_bot import rules
from unogas_bot.rules.replies import BUSINESS, PERSON


def is_person(answers: Answers) -> bool:
    return answers.get("kind") != BUSINESS


def is_business(answers: Answers) -> bool:
    return answers.get("kind") == BUSINESS


def kind_of(answers: Answers) -> str:
    return answers.get("kind", PERSON)


def tax_code_stem(answers: Answers) -> str:
    """The tax code is asked and explained differently for a person and for a business."""
    return f"tax_code_{kind_of(answers)}"


def question_of(answers: Answers) -> str:
    return answers.get("question", "")


def personal_data_of(answers: Answers) -> list[str]:
    """What a password must not contain: the customer's own data as typed so far."""
    return rules.password.personal_data(
        customer_code=answers.get("customer_code"),
        tax_code=answers.get("tax_code"),
        first_name=answers.get("first_name"),
        last_name=answers.get("last_name"),
        company_name=answers.get("company_name"),
        email=answers.get("email"),
    )


NAMES = ("first_name", "last_name", "company_name")
# The registry check happens once the identity is answered, before the login data (the seed's "Avanti >>").
# What was given for one identity (phone, login data) is forgotten with it: after a mismatch, or when the
# check establishes another customer (VERIFIED_AS remembers which one), nothing of it may pass into another
# customer's profile. The same customer verified again (an identity answer changed back) keeps it.
IDENTITY = Checkpoint(
    "verified",
    checks=("customer_code", "kind", *NAMES, "tax_code"),
    before="email",
    clears=("phone", "email", "password", "question", "answer"),
)

SPEC = FormSpec(
    name="registration",
    fields=(
        # The privacy notice before any personal data (issue 15); its version and time go with the profile.
        Notice("privacy", privacy.acknowledge, choices=(privacy.ACCEPT,)),
        Field("customer_code", rules.customer_code.validate),
        Field("kind", rules.replies.parse_kind, choices=(PERSON, BUSINESS), clears=(*NAMES, "tax_code")),
        Field("first_name", rules.names.person_name, applies=is_person),
        Field("last_name", rules.names.person_name, applies=is_person),
        Field("company_name", rules.names.company_name, applies=is_business),
        Field("tax_code", rules.tax_code.validate, given=kind_of, stem=tax_code_stem),
        Field("phone", rules.phone.validate, optional=True, share_contact=True),
        Field("email", rules.email.validate),
        SecretPair("password", rules.password.validate, given=personal_data_of),
        # The answer must not appear in the question: a new question asks the answer again.
        Field("question", rules.answer.validate_question, clears=("answer",)),
        SecretPair("answer", rules.answer.validate, given=question_of, normalize=rules.answer.normalize),
    ),
    entry_commands=("registrati", "register"),
    deep_link="registrati",
    intro="reg_intro",
    checkpoints=(IDENTITY,),
    has_summary=True,
)
NAME = SPEC.name
