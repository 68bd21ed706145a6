"""The rules' one error vocabulary: `Invalid(reason, **params)` with a stable dotted reason.

Each reason in `REASONS` has a message in the catalogue (`e_<reason>`); `params` holds what it may show.
"""

from __future__ import annotations

from collections.abc import Callable

# Every reason, by datum. What a reason's message may show comes as params (bad_chars -> chars is for the
# operators' import report: no message to a customer quotes what was typed);
# too_short -> min, length; too_long -> max, length; too_many_bytes -> max_bytes, bytes; too_few_letters ->
# min; tax_code.bad_length -> length, expected (a person's code); tax_code.bad_length_business -> length.
_BY_DATUM: dict[str, tuple[str, ...]] = {
    "customer_code": ("empty", "bad_chars", "too_short", "too_long", "no_digit"),
    "name": ("empty", "digits", "bad_chars", "too_short", "too_long", "too_few_letters"),
    "company": ("empty", "bad_chars", "too_short", "too_long", "no_letter"),
    "tax_code": (
        "empty",
        "bad_chars",
        "bad_length",
        "bad_length_business",
        "bad_format",
        "bad_date",
        "bad_checksum",
        "vat_for_person",
        "vat_bad_format",
        "vat_bad_checksum",
    ),
    "phone": ("empty", "bad_chars", "invalid", "not_personal"),
    "email": ("empty", "too_long", "no_at", "spaces", "bad_domain", "invalid", "look_alike"),
    "password": ("too_short", "too_long", "too_many_bytes", "control_chars", "common", "personal"),
    "question": ("empty", "too_short", "too_long", "too_few_letters", "control_chars"),
    "answer": ("empty", "too_short", "too_long", "too_many_bytes", "in_question", "control_chars"),
    "kind": ("unknown",),
}
REASONS: frozenset[str] = frozenset(f"{datum}.{why}" for datum, whys in _BY_DATUM.items() for why in whys)
# Refusals a form makes with what it holds, no rule of a datum alone (their messages are `e_<reason>` too):
# the current password as the new one, the password or the answer as the security question.
FORM_REASONS: frozenset[str] = frozenset({"password.same_as_current", "question.is_secret"})


class Invalid(ValueError):
    """A reply that breaks a rule.

    `reason` is a stable dotted key (one of `REASONS`) the conversation turns into a catalogue message;
    `params` holds values the message may show, such as length limits.
    """

    def __init__(self, reason: str, **params: object) -> None:
        super().__init__(reason)
        self.reason: str = reason
        self.params: dict[str, object] = dict(params)

    def __repr__(self) -> str:
        return f"Invalid({self.reason!r}, params={self.params!r})"


def accepts(validate: Callable[..., object], *args: object) -> bool:
    """Whether `validate(*args)` accepts the value: every rule's `is_valid`."""
    try:
        validate(*args)
    except Invalid:
        return False
    return True
