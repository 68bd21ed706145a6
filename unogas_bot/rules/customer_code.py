"""The customer code (NIC/CE/COD.CLIENTE), printed on the bill."""

from __future__ import annotations

import re

from unogas_bot.rules.errors import Invalid, accepts
from unogas_bot.rules.text import (
    bad_chars,
    check_length,
)

CUSTOMER_CODE_MIN, CUSTOMER_CODE_MAX = 4, 20

# Fast paths (registry imports validate every row): a value these match is valid, with the result the full
# rules give; anything else takes the full rules, which also name the reason.
_CODE_FAST = re.compile(rf"(?=[^0-9]*[0-9])[A-Za-z0-9/-]{{{CUSTOMER_CODE_MIN},{CUSTOMER_CODE_MAX}}}")


def validate(text: str) -> str:
    """Customer code from a bill: spaces removed, upper-cased; A-Z, 0-9, '-' and '/' only, with a digit."""
    if _CODE_FAST.fullmatch(text):
        return text.upper()
    return _rules(text)


def _rules(text: str) -> str:
    value = "".join(text.split())
    if not value:
        raise Invalid("customer_code.empty")
    bad = bad_chars(value, lambda ch: ch.isascii() and (ch.isalnum() or ch in "-/"))
    if bad:
        raise Invalid("customer_code.bad_chars", chars=bad)
    value = value.upper()
    check_length(value, "customer_code", CUSTOMER_CODE_MIN, CUSTOMER_CODE_MAX)
    if not any(ch.isdigit() for ch in value):
        raise Invalid("customer_code.no_digit")
    return value


def is_valid(text: str) -> bool:
    """Whether `validate` accepts `text`."""
    return accepts(validate, text)
