"""A person's first name and surname, a business's company name, and the keys they are matched by."""

from __future__ import annotations

import re
import unicodedata

from unogas_bot.rules.errors import Invalid
from unogas_bot.rules.replies import BUSINESS
from unogas_bot.rules.text import (
    MIN_LETTERS,
    QUOTES,
    bad_chars,
    check_length,
    collapse,
    fold,
    is_letter,
    is_mark,
    squeeze,
)

_LATIN_LETTERS = "A-Za-zÀ-ÖØ-öø-ÿ"  # ASCII and Latin-1 letters: all NFC, all category L
_NAME_FAST = re.compile(rf"[{_LATIN_LETTERS}'-]+(?: [{_LATIN_LETTERS}'-]+)*")
_ASCII_NON_LETTERS = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalpha()))
NAME_MIN, NAME_MAX = 2, 50
COMPANY_MIN, COMPANY_MAX = 2, 120


def person_name(text: str) -> str:
    """A first name or surname, case kept: letters of any alphabet, spaces, apostrophes and hyphens.

    Dots are refused on purpose: the name is matched against the registry, which holds names in full,
    so "G. Rossi" would fail later anyway. Typographic apostrophes are stored as "'".
    """
    if (
        _NAME_FAST.fullmatch(text)
        and NAME_MIN <= len(text) <= NAME_MAX
        and len(text) - text.count(" ") - text.count("'") - text.count("-") >= MIN_LETTERS
    ):
        return text  # already collapsed, NFC and free of digits and other characters
    return _person_name_rules(text)


def _person_name_rules(text: str) -> str:
    value = collapse(text).translate(QUOTES)
    if not value:
        raise Invalid("name.empty")
    if any(unicodedata.category(ch).startswith("N") for ch in value):
        raise Invalid("name.digits")
    bad = bad_chars(value, lambda ch: is_letter(ch) or is_mark(ch) or ch in " '-")
    if bad:
        raise Invalid("name.bad_chars", chars=bad)
    check_length(value, "name", NAME_MIN, NAME_MAX)
    if sum(is_letter(ch) for ch in value) < MIN_LETTERS:
        raise Invalid("name.too_few_letters", min=MIN_LETTERS)
    return value


_COMPANY_PUNCTUATION = frozenset(" .,&'-/()+\"")


def _is_company_char(ch: str) -> bool:
    return is_letter(ch) or is_mark(ch) or unicodedata.category(ch) == "Nd" or ch in _COMPANY_PUNCTUATION


# Latin-1 letters, digits and the usual punctuation, single spaces inside, at least one letter.
_COMPANY_FAST = re.compile(
    rf"(?=.*[{_LATIN_LETTERS}])[{_LATIN_LETTERS}0-9.,&'/()+\"-]+(?: [{_LATIN_LETTERS}0-9.,&'/()+\"-]+)*"
)


def company_name(text: str) -> str:
    """A company name as written: letters, digits, spaces and usual punctuation; at least one letter."""
    if _COMPANY_FAST.fullmatch(text) and COMPANY_MIN <= len(text) <= COMPANY_MAX:
        return text
    return _company_name_rules(text)


def _company_name_rules(text: str) -> str:
    value = collapse(text).translate(QUOTES)
    if not value:
        raise Invalid("company.empty")
    bad = bad_chars(value, _is_company_char)
    if bad:
        raise Invalid("company.bad_chars", chars=bad)
    check_length(value, "company", COMPANY_MIN, COMPANY_MAX)
    if not any(is_letter(ch) for ch in value):
        raise Invalid("company.no_letter")
    return value


# --- matching keys --------------------------------------------------------------------------------------


def person_key(text: str) -> str:
    """Key for comparing names: folded letters only, so "D'Angelo", "d angelo" and "DANGELO" match."""
    if text.isascii():  # folding ASCII is lower-casing; its letters are a-z
        return text.lower().translate(_ASCII_NON_LETTERS)
    return "".join(ch for ch in fold(text) if ch.isalpha())


# Spellings of Italian legal forms at the end of a company key (already folded, letters and digits only),
# longest first, mapped to one canonical spelling.
_LEGAL_FORMS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            "societaaresponsabilitalimitatasemplificata": "srls",
            "srlsemplificata": "srls",
            "societaaresponsabilitalimitata": "srl",
            "societaperazioni": "spa",
            "societainaccomanditaperazioni": "sapa",
            "societainaccomanditasemplice": "sas",
            "societainnomecollettivo": "snc",
            "societacooperativaaresponsabilitalimitata": "scarl",
            "societacooperativaarl": "scarl",
            "cooperativaarl": "scarl",
            "soccooparl": "scarl",
            "cooparl": "scarl",
            "scrl": "scarl",
            "societacooperativa": "coop",
            "cooperativa": "coop",
            "soccoop": "coop",
        }.items(),
        key=lambda pair: -len(pair[0]),
    )
)


def company_key(text: str) -> str:
    """Key for comparing company names: folded letters and digits only, "&" read as "e", and the legal
    form spelled one way ("S.r.l." == "srl", "Soc. Coop. a r.l." == "Scrl" == "scarl")."""
    key = squeeze(text.replace("&", " e "))
    for variant, canonical in _LEGAL_FORMS:
        if len(key) > len(variant) and key.endswith(variant):
            return key[: -len(variant)] + canonical
    return key


def holder(kind: str, first_name: str | None, last_name: str | None, company_name: str | None) -> str:
    """The name the bill is in: the company name of a business, "first last" of a person."""
    if kind == BUSINESS:
        return company_name or ""
    return f"{first_name} {last_name}"
