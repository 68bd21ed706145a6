"""Codice fiscale (a person) or partita IVA (a business or a person with one), with python-stdnum."""

from __future__ import annotations

import re

from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.it import codicefiscale, iva

from unogas_bot.rules.errors import Invalid, accepts
from unogas_bot.rules.replies import BUSINESS, PERSON
from unogas_bot.rules.text import (
    bad_chars,
)

_TAX_SEPARATORS = re.compile(r"[\s.\-‐‑–—]+")
# Layout of a personal code; the month letter is checked with the date to give a precise reason.
_CF_LAYOUT = re.compile(r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]")
# Omocodia: when two people would share a code, digits are replaced by these letters (L=0 ... V=9).
_OMOCODE = str.maketrans("LMNPQRSTUV", "0123456789")
_MONTH_LETTERS = "ABCDEHLMPRST"
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _check_birth_date(code: str) -> None:
    """Reject impossible dates, which stdnum lets through (it takes the day modulo 40)."""
    month = _MONTH_LETTERS.find(code[8])
    if month < 0:
        raise Invalid("tax_code.bad_date")
    year = int(code[6:8].translate(_OMOCODE))
    day = int(code[9:11].translate(_OMOCODE))
    if 41 <= day <= 71:  # women: day + 40
        day -= 40
    if not 1 <= day <= 31:
        raise Invalid("tax_code.bad_date")
    # Only two year digits are stored; every year divisible by 4 was leap in 1901-2099 (2000 included).
    last_day = 28 if month == 1 and year % 4 else _MONTH_DAYS[month]
    if day > last_day:
        raise Invalid("tax_code.bad_date")


def _personal_code(code: str) -> str:
    if not _CF_LAYOUT.fullmatch(code):
        raise Invalid("tax_code.bad_format")
    _check_birth_date(code)
    # What stdnum's validate() adds to the two checks above is only its check character: its layout is
    # ours with the month letters, which _check_birth_date checks, and its date check is laxer than ours.
    # Its validate() first cleans the text again, which costs more than everything else in a registry
    # import, so its check character is asked for directly.
    if codicefiscale.calc_check_digit(code[:15]) != code[15]:
        raise Invalid("tax_code.bad_checksum")
    return code


def _vat_number(code: str) -> str:
    try:
        return iva.validate(code)
    except InvalidChecksum:
        raise Invalid("tax_code.vat_bad_checksum") from None
    except ValidationError:  # all-zero company number or unknown tax office code
        raise Invalid("tax_code.vat_bad_format") from None


def validate(text: str, kind: str) -> str:
    """A codice fiscale (16 characters, omocodie accepted) or, for businesses, also an 11-digit partita IVA.

    Spaces, dots and dashes are removed and letters upper-cased; an "IT" prefix before a partita IVA is
    dropped. Returns the bare code.
    """
    if kind not in (PERSON, BUSINESS):
        raise ValueError(f"unknown customer kind: {kind!r}")
    if _CF_LAYOUT.fullmatch(text):  # already bare and upper-case, as in a registry file
        return _personal_code(text)
    code = _TAX_SEPARATORS.sub("", text)
    if not code:
        raise Invalid("tax_code.empty")
    if not (code.isascii() and code.isalnum()):
        bad = bad_chars(code, lambda ch: ch.isascii() and ch.isalnum())
        if bad:
            raise Invalid("tax_code.bad_chars", chars=bad)
    code = code.upper()
    if len(code) == 13 and code.startswith("IT") and code[2:].isdigit():
        code = code[2:]
    if len(code) == 11 and code.isdigit():
        if kind == PERSON:
            raise Invalid("tax_code.vat_for_person")
        return _vat_number(code)
    if len(code) == 16:
        return _personal_code(code)
    if kind == PERSON:
        raise Invalid("tax_code.bad_length", length=len(code), expected=16)
    if len(code) == 11:
        raise Invalid("tax_code.vat_bad_format")  # 11 characters but not all digits
    raise Invalid("tax_code.bad_length_business", length=len(code))


def is_valid(text: str, kind: str) -> bool:
    """Whether `validate` accepts `text` for a customer of `kind`."""
    return accepts(validate, text, kind)
