"""Partly hidden data for summaries and the profile: a tax code, a phone, an e-mail."""

from __future__ import annotations

import phonenumbers

MASK = "•"


def tax_code(code: str) -> str:
    """Keep the first 3 and last 2 characters: "RSSMRA80A01H501U" -> "RSS•••••••••••1U"."""
    code = code.strip()
    if len(code) <= 5:
        return MASK * len(code)
    return code[:3] + MASK * (len(code) - 5) + code[-2:]


def phone(e164: str) -> str:
    """Keep the country code and the last 2 digits: "+393471234567" -> "+39 ••• ••• ••67"."""
    try:
        number = phonenumbers.parse(e164, None)
        prefix = f"+{number.country_code} "
        digits = phonenumbers.national_significant_number(number)
    except phonenumbers.NumberParseException:
        prefix, digits = "", "".join(ch for ch in e164 if ch.isdecimal())
    if len(digits) <= 2:
        return prefix + MASK * len(digits)
    hidden = MASK * (len(digits) - 4)
    groups = [hidden[i : i + 3] for i in range(0, len(hidden), 3)]
    return prefix + " ".join([*groups, MASK * min(2, len(digits) - 2) + digits[-2:]])


def email(address: str) -> str:
    """Keep the first and last character of the local part and the domain: "m•••o@example.it"."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return MASK * 3
    tail = local[-1] if len(local) > 2 else ""
    return f"{local[0]}{MASK * 3}{tail}@{domain}"
