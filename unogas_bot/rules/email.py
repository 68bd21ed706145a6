"""The e-mail address that is the user ID, with email-validator (no DNS look-ups).

The whole address is NFKC-normalised first, so a full-width "ｍａｒｉｏ" or a ligature is the
address it shows. A part that mixes scripts, or uses a letter that looks like an ASCII one (a Cyrillic
"а", a Greek "ο"), is refused: it would be a second login ID looking like a customer's own. Which letters
look alike is Unicode's confusables data (UTS #39) as the maintained `confusable-homoglyphs` package ships
it, the data django-registration refuses look-alike e-mail addresses with.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from unogas_bot.rules.errors import Invalid, accepts

EMAIL_MAX = 254
# Scripts every address may mix with its own: digits and punctuation ("Common"), combining accents.
_NEUTRAL_SCRIPTS = ["COMMON", "INHERITED"]


def validate(text: str) -> str:
    """A new user ID: an e-mail address, syntax only (no DNS), NFKC-normalised and returned entirely
    lower-cased; no look-alike part."""
    normalized = login_id(text)
    local, _, domain = normalized.rpartition("@")
    if any(looks_like_another(part) for part in (local, *domain.split("."))):
        raise Invalid("email.look_alike")
    return normalized


def login_id(text: str) -> str:
    """An address typed to log in or recover a password: as `validate`, but a look-alike part is only
    looked up (a profile saved before they were refused keeps its login ID); it matches no other."""
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        raise Invalid("email.empty")
    if len(value) > EMAIL_MAX:
        raise Invalid("email.too_long", max=EMAIL_MAX, length=len(value))
    if "@" not in value:
        raise Invalid("email.no_at")
    if any(ch.isspace() for ch in value):
        raise Invalid("email.spaces")
    labels = value.rpartition("@")[2].split(".")
    # email-validator allows a one-letter top-level domain ("gmail.c"): a typo we can catch here.
    if len(labels) < 2 or not all(labels) or len(labels[-1]) < 2:
        raise Invalid("email.bad_domain")
    try:
        # The library's messages are English and technical: never pass them on to the user.
        normalized = validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise Invalid("email.invalid") from None
    if len(normalized) > EMAIL_MAX:
        raise Invalid("email.too_long", max=EMAIL_MAX, length=len(normalized))
    return normalized


def looks_like_another(part: str) -> bool:
    """Does this part of an address mix scripts, hold a letter that imitates an ASCII one (UTS #39's
    confusables: a Cyrillic "а", a Greek "ο", a dotless "ı"; "ò" or "ñ" imitate nothing), or an ASCII
    letter with a mark no letter has ("i" with a dot above)?"""
    if part.isascii():
        return False  # the usual case: no table to look at
    if _marked_ascii_letter(part):
        return True
    from confusable_homoglyphs import confusables  # a 1 MB table, read at the first address that needs it

    if confusables.is_mixed_script(part, allowed_aliases=_NEUTRAL_SCRIPTS):
        return True
    found = confusables.is_confusable(part, greedy=True) or []
    return any(
        not hit["character"].isascii() and any(glyph["c"].isascii() for glyph in hit["homoglyphs"])
        for hit in found
    )


def _marked_ascii_letter(part: str) -> bool:
    """Does a combining mark sit on an ASCII letter? After NFKC every accent Unicode has a letter for is
    that letter ("ò"); a mark left over has none: a dot above an "i" (invisible), an overlay or a line
    below, which the script check counts as no script at all."""
    base = ""
    for ch in part:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            if base.isascii() and base.isalpha():
                return True
        else:
            base = ch
    return False


def is_valid(text: str) -> bool:
    """Whether `validate` accepts `text`."""
    return accepts(validate, text)
