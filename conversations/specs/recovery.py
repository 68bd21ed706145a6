"""What the password recovery asks (the hooks that check it: conversations/recovery.py)."""

from __future__ import annotations

from conversations.spec import Checkpoint, Field, FormSpec, Secret, SecretPair
from unogas_bot import rules


def security_answer(text: str) -> str:
    """Any non-empty answer, normalised as the registration stored it (the account's own is compared)."""
    value = rules.answer.normalize(text)
    if not value:
        raise rules.Invalid("answer.empty")
    return value


# The security question is shown only once the address and the code belong to one account.
IDENTITY = Checkpoint("account_id", checks=("email", "customer_code"), before="answer")

SPEC = FormSpec(
    name="recovery",
    fields=(
        Field("email", rules.email.login_id),
        Field("customer_code", rules.customer_code.validate),
        # Kept only as the engine's keyed digest, and only once it proved right (a wrong one is forgotten).
        Secret("answer", security_answer),
        # The rules that need no account; the account's own data are checked in on_value.
        SecretPair("password", rules.password.validate, stem="new_password"),
    ),
    entry_commands=("recupera_password", "recover"),
    deep_link="recupera_password",
    intro="rec_intro",
    text_prefix="rec_",
    checkpoints=(IDENTITY,),
)
NAME = SPEC.name
