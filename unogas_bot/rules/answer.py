"""The security question the customer writes, and its answer."""

from __future__ import annotations

import re

from unogas_bot.rules.errors import Invalid
from unogas_bot.rules.password import PASSWORD_MAX_BYTES
from unogas_bot.rules.text import (
    MIN_LETTERS,
    QUOTES,
    check_length,
    collapse,
    fold,
    is_forbidden_control,
    is_letter,
)

QUESTION_MIN, QUESTION_MAX = 10, 200
ANSWER_MIN, ANSWER_MAX = 2, 60


def validate_question(text: str) -> str:
    """A question the customer writes for themselves: whitespace collapsed, 10-200 characters."""
    value = collapse(text)
    if not value:
        raise Invalid("question.empty")
    check_length(value, "question", QUESTION_MIN, QUESTION_MAX)
    if sum(is_letter(ch) for ch in value) < MIN_LETTERS:
        raise Invalid("question.too_few_letters", min=MIN_LETTERS)
    # Shown back to the customer and stored: invisible characters cannot be read, and PostgreSQL refuses
    # NUL in text, so a question holding one could never be saved there.
    if any(is_forbidden_control(ch) for ch in value):
        raise Invalid("question.control_chars")
    return value


def normalize(text: str) -> str:
    """The form of an answer that gets hashed and compared.

    Case, accents and extra whitespace do not matter, and typographic quotes count as ASCII ones
    ("Sant’Anna" from a phone equals "Sant'Anna" from a PC). Changing this invalidates stored answers.
    """
    return " ".join(fold(text.translate(QUOTES)).split())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    """Whether `needle` occurs as consecutive whole words in `haystack`."""
    size = len(needle)
    return size > 0 and any(haystack[i : i + size] == needle for i in range(len(haystack) - size + 1))


def validate(text: str, question: str) -> str:
    """Return the normalised answer (see `normalize_answer`); it may not be given away by the question."""
    value = normalize(text)
    if not value:
        raise Invalid("answer.empty")
    check_length(value, "answer", ANSWER_MIN, ANSWER_MAX)
    # Invisible characters could not be typed again at recovery (and a lone surrogate has no UTF-8 form).
    if any(is_forbidden_control(ch) for ch in value):
        raise Invalid("answer.control_chars")
    if len(value.encode()) > PASSWORD_MAX_BYTES:
        # The normalised answer is bcrypt-hashed, and bcrypt takes at most 72 bytes.
        raise Invalid("answer.too_many_bytes", max_bytes=PASSWORD_MAX_BYTES, bytes=len(value.encode()))
    # Whole words only: "ma" is not "in" a question containing "mamma".
    if _contains_words(_words(normalize(question)), _words(value)):
        raise Invalid("answer.in_question")
    return value
