"""The e-mail address that is the user ID, with email-validator (no DNS look-ups)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from unogas_bot.rules.errors import Invalid, accepts

EMAIL_MAX = 254


def validate(text: str) -> str:
    """An e-mail address, syntax only (no DNS), returned entirely lower-cased."""
    value = text.strip()
    if not value:
        raise Invalid("email.empty")
    if len(value) > EMAIL_MAX:
        raise Invalid("email.too_long", max=EMAIL_MAX, length=len(value))
    if "@" not in value:
        raise Invalid("email.no_at")
    if any(ch.isspace() for ch in value):
        raise Invalid("email.spaces")
    labels = value.rpartition("@")[2].split(".")
    # email-validator allows a one-letter top-level domain ("gmail.c"): a typo we can catch here.
    if len(labels) < 2 or not all(labels) or len(labels[-1]) < 2:
        raise Invalid("email.bad_domain")
    try:
        # The library's messages are English and technical: never pass them on to the user.
        normalized = validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise Invalid("email.invalid") from None
    if len(normalized) > EMAIL_MAX:
        raise Invalid("email.too_long", max=EMAIL_MAX, length=len(normalized))
    return normalized


def is_valid(text: str) -> bool:
    """Whether `validate` accepts `text`."""
    return accepts(validate, text)
