"""Pure field rules, one module per datum, in the style of python-stdnum.

Each module's `validate(text)` returns the normalised value or raises `Invalid` (errors.py) with a stable
dotted reason that the conversation turns into the catalogue's message (`e_<reason>`); `is_valid(text)`
says yes or no. Nothing here touches the database or Telegram.
"""

from unogas_bot.rules import (
    answer,
    customer_code,
    email,
    masks,
    names,
    password,
    phone,
    replies,
    tax_code,
    text,
)
from unogas_bot.rules.errors import REASONS, Invalid

__all__ = [
    "REASONS",
    "Invalid",
    "answer",
    "customer_code",
    "email",
    "masks",
    "names",
    "password",
    "phone",
    "replies",
    "tax_code",
    "text",
]
