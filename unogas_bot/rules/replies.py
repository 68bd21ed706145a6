"""Keyword replies: person or business, and "salta" to skip an optional question."""

from __future__ import annotations

from unogas_bot.rules.errors import Invalid
from unogas_bot.rules.text import (
    phrase,
)

PERSON = "person"
BUSINESS = "business"

_PERSON_WORDS = frozenset(
    {"persona", "persona fisica", "privato", "privata", "cliente privato", "person", "private", "individual"}
)
_BUSINESS_WORDS = frozenset(
    {
        "azienda",
        "impresa",
        "ditta",
        "ditta individuale",
        "societa",
        "ente",
        "condominio",
        "partita iva",
        "p iva",
        "piva",
        "business",
        "company",
    }
)
_SKIP_WORDS = frozenset({"salta", "skip", "nessuno", "nessuna", "no"})


def parse_kind(text: str) -> str:
    """Map a typed reply to "person" or "business" (case, accents, punctuation and emoji ignored)."""
    words = phrase(text)
    if words in _PERSON_WORDS:
        return PERSON
    if words in _BUSINESS_WORDS:
        return BUSINESS
    raise Invalid("kind.unknown")


def is_skip(text: str) -> bool:
    """Whether a reply means "skip this optional step" (the "Salta"/"Skip" button label included)."""
    return phrase(text) in _SKIP_WORDS
