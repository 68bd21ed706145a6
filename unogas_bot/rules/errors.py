"""The rules' one error vocabulary: `Invalid(reason, **params)` with a stable dotted reason.

Each reason in `REASONS` has a message in the catalogue (`e_<reason>`); `params` holds what it may show.
"""

from __future__ import annotations

REASONS: frozenset[str] = frozenset(
    {
        "customer_code.empty",
        "customer_code.bad_chars",  # params: chars
        "customer_code.too_short",  # params: min, length
        "customer_code.too_long",  # params: max, length
        "customer_code.no_digit",
        "name.empty",
        "name.digits",
        "name.bad_chars",  # params: chars
        "name.too_short",  # params: min, length
        "name.too_long",  # params: max, length
        "name.too_few_letters",  # params: min
        "company.empty",
        "company.bad_chars",  # params: chars
        "company.too_short",  # params: min, length
        "company.too_long",  # params: max, length
        "company.no_letter",
        "tax_code.empty",
        "tax_code.bad_chars",  # params: chars
        "tax_code.bad_length",  # person: params length, expected
        "tax_code.bad_length_business",  # business: params length
        "tax_code.bad_format",
        "tax_code.bad_date",
        "tax_code.bad_checksum",
        "tax_code.vat_for_person",
        "tax_code.vat_bad_format",
        "tax_code.vat_bad_checksum",
        "phone.empty",
        "phone.bad_chars",  # params: chars
        "phone.invalid",
        "phone.not_personal",
        "email.empty",
        "email.too_long",  # params: max, length
        "email.no_at",
        "email.spaces",
        "email.bad_domain",
        "email.invalid",
        "password.too_short",  # params: min, length
        "password.too_long",  # params: max, length
        "password.too_many_bytes",  # params: max_bytes, bytes
        "password.control_chars",
        "password.common",
        "password.personal",
        "question.empty",
        "question.too_short",  # params: min, length
        "question.too_long",  # params: max, length
        "question.too_few_letters",  # params: min
        "question.control_chars",
        "answer.empty",
        "answer.too_short",  # params: min, length
        "answer.too_long",  # params: max, length
        "answer.too_many_bytes",  # params: max_bytes, bytes
        "answer.in_question",
        "answer.control_chars",
        "kind.unknown",
    }
)


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
