"""What each of the logged-in customer's own-data forms asks: the current password first, then its own
questions (the hooks that act on them: conversations/own_data.py)."""

from __future__ import annotations

from conversations.draft import Answers
from conversations.spec import Field, FormSpec, Notice, Secret, SecretPair, as_typed
from unogas_bot import rules

ERASE = "erase"  # the value of the erasure's confirmation button

# The current password: checked at once, kept only as the engine's keyed digest once it proved right.
CURRENT = Secret("current", as_typed, stem="current_password")


def question_of(answers: Answers) -> str:
    return answers.get("question", "")


def press_the_button(text: str) -> str:
    """The erasure is confirmed only by its button: a typed word could be a slip."""
    raise rules.Invalid("erase.press_button")


# The Italian and English commands that start each form, by the form's name (also its audit purpose).
COMMANDS = {
    "change_password": ("cambia_password", "change_password"),
    "change_email": ("cambia_email", "change_email"),
    "change_phone": ("cambia_telefono", "change_phone"),
    "change_question": ("cambia_domanda", "change_question"),
    "export": ("i_miei_dati", "my_data"),
    "erase": ("cancella_profilo", "delete_profile"),
}


def own_data_spec(name: str, *fields: Field, progress: bool = True) -> FormSpec:
    """A logged-in customer's form `name`: the current password first, then `fields`."""
    return FormSpec(
        name=name, fields=(CURRENT, *fields), entry_commands=COMMANDS[name], show_progress=progress
    )


CHANGE_PASSWORD = own_data_spec(
    "change_password",
    SecretPair("password", rules.password.validate, stem="new_password"),
)
CHANGE_EMAIL = own_data_spec(
    "change_email",
    Field("email", rules.email.validate, stem="new_email"),
)
CHANGE_PHONE = own_data_spec(
    "change_phone",
    Field("phone", rules.phone.validate, optional=True, share_contact=True, stem="new_phone"),
)
CHANGE_QUESTION = own_data_spec(
    "change_question",
    Field("question", rules.answer.validate_question, clears=("answer",), stem="question"),
    SecretPair(
        "answer",
        rules.answer.validate,
        given=question_of,
        normalize=rules.answer.normalize,
        stem="answer",
    ),
)
EXPORT = own_data_spec("export", progress=False)
ERASE_PROFILE = own_data_spec(
    "erase",
    Notice("confirm", press_the_button, choices=(ERASE, "cancel"), stem="erase_confirm"),
    progress=False,
)

# In the order of own_data.FORMS.
SPECS = (CHANGE_PASSWORD, CHANGE_EMAIL, CHANGE_PHONE, CHANGE_QUESTION, EXPORT, ERASE_PROFILE)
