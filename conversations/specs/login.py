"""What the login asks (the hooks that check it: conversations/login.py)."""

from __future__ import annotations

from conversations.spec import Field, FormSpec, Secret, as_typed
from unogas_bot import rules

SPEC = FormSpec(
    name="login",
    fields=(
        Field("email", rules.email.login_id),
        # Any stored password may be typed (the registration rules do not apply); checked at once, never kept.
        Secret("password", as_typed, consumed=True),
    ),
    entry_commands=("accedi", "login"),
    deep_link="accedi",
    text_prefix="login_",
)
NAME = SPEC.name
