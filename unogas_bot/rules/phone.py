"""A phone number, optional: stored in E.164, with phonenumbers."""

from __future__ import annotations

import phonenumbers

from unogas_bot.rules.errors import Invalid, accepts
from unogas_bot.rules.text import (
    bad_chars,
)

# Valid numbers that cannot be a customer's own line: toll-free (800), premium-rate (899), shared-cost...
_NOT_A_PERSONS_PHONE = frozenset(
    {
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.PAGER,
        phonenumbers.PhoneNumberType.VOICEMAIL,
    }
)


def validate(text: str) -> str:
    """A valid phone number in E.164 ("+393471234567").

    Without a prefix it is Italian; other countries need "+" or "00". A bare "39..." that is too long to
    be an Italian national number (as Telegram's contact button sends it) is read as +39 by phonenumbers.
    """
    raw = text.strip()
    if not raw:
        raise Invalid("phone.empty")
    bad = bad_chars(raw, lambda ch: ch.isdecimal() or ch.isspace() or ch in "+-.()/")
    if bad:
        raise Invalid("phone.bad_chars", chars=bad)
    digits = "".join(ch for ch in raw if ch.isdecimal())
    if not digits:
        raise Invalid("phone.invalid")
    # Keep a "+" only where it belongs: before the first digit ("(+39) 347..." included).
    plus = "+" if "+" in raw[: raw.index(digits[0])] else ""
    try:
        number = phonenumbers.parse(plus + digits, "IT")
    except phonenumbers.NumberParseException:
        raise Invalid("phone.invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid("phone.invalid")
    if phonenumbers.number_type(number) in _NOT_A_PERSONS_PHONE:
        raise Invalid("phone.not_personal")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_valid(text: str) -> bool:
    """Whether `validate` accepts `text`."""
    return accepts(validate, text)
