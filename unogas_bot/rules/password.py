"""A new password: length, no common password, none of the customer's own data."""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterable
from importlib import resources

from unogas_bot.rules.errors import Invalid
from unogas_bot.rules.text import (
    check_length,
    fold,
    is_forbidden_control,
    squeeze,
)

PASSWORD_MIN, PASSWORD_MAX, PASSWORD_MAX_BYTES = 8, 64, 72

_COMMON_PASSWORDS_FILE = "data/common-passwords.txt.gz"
_TRAILING_JUNK = re.compile(r"[\W\d_]+$")
_COMMON_BASE_MIN = 4
_PERSONAL_MIN = 3
# Words too common in names to forbid inside passwords (particles, legal forms).
_NAME_PARTICLES = frozenset(
    {
        "dal",
        "dai",
        "dei",
        "del",
        "della",
        "delle",
        "dello",
        "degli",
        "dagli",
        "dalla",
        "dalle",
        "san",
        "santa",
        "santo",
        "van",
        "von",
        "der",
        "den",
        "des",
        "les",
        "los",
        "las",
        "the",
        "and",
    }
)
_LEGAL_FORM_WORDS = frozenset(
    {"srl", "srls", "spa", "sas", "snc", "sapa", "scarl", "scrl", "coop", "soc", "societa"}
)
_NAME_NOISE = _NAME_PARTICLES | _LEGAL_FORM_WORDS


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, loaded once on first use."""
    data = resources.files("unogas_bot").joinpath(_COMMON_PASSWORDS_FILE).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines if line.strip())


# The example passwords the bot's own messages show (texts.py): known to everybody who reads them.
PUBLISHED_PASSWORDS = (
    "Sole sul lago 2024",
    "Nuvole sul mare 2025",
    "Sun on the lake 2024",
    "Clouds over the sea 2025",
)


def is_common(text: str) -> bool:
    """True when the password, ignoring case, is on the list, or is a listed word (4+ characters)
    followed only by digits and symbols ("Dragon2024!"), or is one of the bot's published examples
    (however spaced or capitalised)."""
    if squeeze(text) in {squeeze(example) for example in PUBLISHED_PASSWORDS}:
        return True
    common = _common_passwords()
    lowered = text.strip().casefold()
    if lowered in common:
        return True
    base = _TRAILING_JUNK.sub("", lowered)
    return len(base) >= _COMMON_BASE_MIN and base in common


def _personal_fragments(personal: Iterable[str | None]) -> set[str]:
    fragments: set[str] = set()
    for item in personal:
        if not item:
            continue
        fragments.add(squeeze(item))
        fragments.update(re.findall(r"[^\W\d_]+", fold(item)))  # each word of a multi-word name
    return {f for f in fragments if len(f) >= _PERSONAL_MIN and f not in _NAME_NOISE}


def personal_data(
    *,
    customer_code: str | None,
    tax_code: str | None,
    first_name: str | None,
    last_name: str | None,
    company_name: str | None,
    email: str | None,
) -> list[str]:
    """What a customer's password must not contain: their own data, and of the e-mail its local part."""
    local_part = (email or "").split("@", 1)[0]
    items = (customer_code, tax_code, first_name, last_name, company_name, local_part)
    return [item for item in items if item]


def validate(text: str, personal: Iterable[str | None] = ()) -> str:
    """Check a new password and return it unchanged (it is never stripped or normalised).

    `personal` holds the customer's own data (customer code, tax code, names, company name and the
    e-mail's local part, not the whole address); the password may not contain any of them.
    """
    check_length(text, "password", PASSWORD_MIN, PASSWORD_MAX)
    if any(is_forbidden_control(ch) for ch in text):
        raise Invalid("password.control_chars")
    size = len(text.encode("utf-8"))
    if size > PASSWORD_MAX_BYTES:  # bcrypt ignores everything after 72 bytes
        raise Invalid("password.too_many_bytes", max_bytes=PASSWORD_MAX_BYTES, bytes=size)
    if is_common(text):
        raise Invalid("password.common")
    squeezed = squeeze(text)
    if any(fragment in squeezed for fragment in _personal_fragments(personal)):
        raise Invalid("password.personal")
    return text
