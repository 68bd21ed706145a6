"""Helpers the rules share: normalising and folding text, length checks, characters shown in errors."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from unogas_bot.rules.errors import Invalid

MIN_LETTERS = 2
# Phones with "smart punctuation" (iOS) turn ' and " into typographic quotes: store and compare one form.
QUOTES = str.maketrans(dict.fromkeys("’‘ʼ`´", "'") | dict.fromkeys("“”«»", '"'))


def collapse(text: str) -> str:
    """NFC-normalise, turn every run of whitespace into one space and trim."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, casefold, drop combining marks."""
    # Decompose again after casefold: casefolding can produce new precomposed characters.
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


BAD_CHARS_SHOWN = 10  # the message quotes them: a long message of odd characters must not make it too long


def bad_chars(text: str, allowed: Callable[[str], bool]) -> str:
    """The distinct characters of `text` that `allowed` rejects, in order of appearance (the first
    `BAD_CHARS_SHOWN`, then "…")."""
    bad = list(dict.fromkeys(ch for ch in text if not allowed(ch)))
    return "".join(bad[:BAD_CHARS_SHOWN]) + ("…" if len(bad) > BAD_CHARS_SHOWN else "")


def check_length(value: str, prefix: str, low: int, high: int) -> None:
    if len(value) < low:
        raise Invalid(f"{prefix}.too_short", min=low, length=len(value))
    if len(value) > high:
        raise Invalid(f"{prefix}.too_long", max=high, length=len(value))


def is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def phrase(text: str) -> str:
    """Folded words only: punctuation, emoji and extra spaces removed (for keyword answers)."""
    return " ".join(re.sub(r"[\W_]+", " ", fold(text)).split())


_ASCII_NON_ALNUM = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalnum()))


def squeeze(text: str) -> str:
    """Folded letters and digits only, so "Mario.Rossi-80" and "mariorossi80" compare equal."""
    if text.isascii():  # folding ASCII is lower-casing
        return text.lower().translate(_ASCII_NON_ALNUM)
    return "".join(ch for ch in fold(text) if ch.isalnum())


def is_forbidden_control(ch: str) -> bool:
    # ZERO WIDTH JOINER (Cf) is part of emoji sequences such as family or flag emoji: allow it.
    return ch != "\u200d" and unicodedata.category(ch) in ("Cc", "Cf", "Cs")
