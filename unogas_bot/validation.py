"""Pure validation rules for what customers type while registering.

Each rule takes the raw text of a reply and returns the normalised value, or raises `Invalid` with a
stable dotted reason key (listed in `REASONS`) that the conversation turns into a catalogue message.
Nothing here touches the database or Telegram.
"""

from __future__ import annotations

import functools
import gzip
import re
import unicodedata
from collections.abc import Callable, Iterable
from importlib import resources

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.it import codicefiscale, iva

REASONS: frozenset[str] = frozenset(
    {
        "customer_code.empty",
        "customer_code.bad_chars",  # params: chars
        "customer_code.too_short",  # params: min, length
        "customer_code.too_long",  # params: max, length
        "customer_code.no_digit",
        "name.empty",
        "name.digits",
        "name.bad_chars",  # params: chars
        "name.too_short",  # params: min, length
        "name.too_long",  # params: max, length
        "name.too_few_letters",  # params: min
        "company.empty",
        "company.bad_chars",  # params: chars
        "company.too_short",  # params: min, length
        "company.too_long",  # params: max, length
        "company.no_letter",
        "tax_code.empty",
        "tax_code.bad_chars",  # params: chars
        "tax_code.bad_length",  # person: params length, expected
        "tax_code.bad_length_business",  # business: params length
        "tax_code.bad_format",
        "tax_code.bad_date",
        "tax_code.bad_checksum",
        "tax_code.vat_for_person",
        "tax_code.vat_bad_format",
        "tax_code.vat_bad_checksum",
        "phone.empty",
        "phone.bad_chars",  # params: chars
        "phone.invalid",
        "phone.not_personal",
        "email.empty",
        "email.too_long",  # params: max, length
        "email.no_at",
        "email.spaces",
        "email.bad_domain",
        "email.invalid",
        "password.too_short",  # params: min, length
        "password.too_long",  # params: max, length
        "password.too_many_bytes",  # params: max_bytes, bytes
        "password.control_chars",
        "password.common",
        "password.personal",
        "question.empty",
        "question.too_short",  # params: min, length
        "question.too_long",  # params: max, length
        "question.too_few_letters",  # params: min
        "question.control_chars",
        "answer.empty",
        "answer.too_short",  # params: min, length
        "answer.too_long",  # params: max, length
        "answer.too_many_bytes",  # params: max_bytes, bytes
        "answer.in_question",
        "answer.control_chars",
        "kind.unknown",
    }
)

CUSTOMER_CODE_MIN, CUSTOMER_CODE_MAX = 4, 20
NAME_MIN, NAME_MAX = 2, 50
COMPANY_MIN, COMPANY_MAX = 2, 120
EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX, PASSWORD_MAX_BYTES = 8, 64, 72
QUESTION_MIN, QUESTION_MAX = 10, 200
ANSWER_MIN, ANSWER_MAX = 2, 60
MIN_LETTERS = 2
MASK = "•"

PERSON = "person"
BUSINESS = "business"


class Invalid(ValueError):
    """A reply that breaks a rule.

    `reason` is a stable dotted key (one of `REASONS`) the conversation turns into a catalogue message;
    `params` holds values the message may show, such as length limits.
    """

    def __init__(self, reason: str, **params: object) -> None:
        super().__init__(reason)
        self.reason: str = reason
        self.params: dict[str, object] = dict(params)

    def __repr__(self) -> str:
        return f"Invalid({self.reason!r}, params={self.params!r})"


# --- shared helpers -------------------------------------------------------------------------------------

# Phones with "smart punctuation" (iOS) turn ' and " into typographic quotes: store and compare one form.
_QUOTES = str.maketrans(dict.fromkeys("’‘ʼ`´", "'") | dict.fromkeys("“”«»", '"'))


def _collapse(text: str) -> str:
    """NFC-normalise, turn every run of whitespace into one space and trim."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, casefold, drop combining marks."""
    # Decompose again after casefold: casefolding can produce new precomposed characters.
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


BAD_CHARS_SHOWN = 10  # the message quotes them: a long message of odd characters must not make it too long


def _bad_chars(text: str, allowed: Callable[[str], bool]) -> str:
    """The distinct characters of `text` that `allowed` rejects, in order of appearance (the first
    `BAD_CHARS_SHOWN`, then "…")."""
    bad = list(dict.fromkeys(ch for ch in text if not allowed(ch)))
    return "".join(bad[:BAD_CHARS_SHOWN]) + ("…" if len(bad) > BAD_CHARS_SHOWN else "")


def _check_length(value: str, prefix: str, low: int, high: int) -> None:
    if len(value) < low:
        raise Invalid(f"{prefix}.too_short", min=low, length=len(value))
    if len(value) > high:
        raise Invalid(f"{prefix}.too_long", max=high, length=len(value))


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def _phrase(text: str) -> str:
    """Folded words only: punctuation, emoji and extra spaces removed (for keyword answers)."""
    return " ".join(re.sub(r"[\W_]+", " ", _fold(text)).split())


# --- customer code --------------------------------------------------------------------------------------


# Fast paths (registry imports validate every row): a value these match is valid, with the result the full
# rules give; anything else takes the full rules, which also name the reason.
_CODE_FAST = re.compile(rf"(?=[^0-9]*[0-9])[A-Za-z0-9/-]{{{CUSTOMER_CODE_MIN},{CUSTOMER_CODE_MAX}}}")
_LATIN_LETTERS = "A-Za-zÀ-ÖØ-öø-ÿ"  # ASCII and Latin-1 letters: all NFC, all category L
_NAME_FAST = re.compile(rf"[{_LATIN_LETTERS}'-]+(?: [{_LATIN_LETTERS}'-]+)*")
_ASCII_NON_LETTERS = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalpha()))


def customer_code(text: str) -> str:
    """Customer code from a bill: spaces removed, upper-cased; A-Z, 0-9, '-' and '/' only, with a digit."""
    if _CODE_FAST.fullmatch(text):
        return text.upper()
    return _customer_code_rules(text)


def _customer_code_rules(text: str) -> str:
    value = "".join(text.split())
    if not value:
        raise Invalid("customer_code.empty")
    bad = _bad_chars(value, lambda ch: ch.isascii() and (ch.isalnum() or ch in "-/"))
    if bad:
        raise Invalid("customer_code.bad_chars", chars=bad)
    value = value.upper()
    _check_length(value, "customer_code", CUSTOMER_CODE_MIN, CUSTOMER_CODE_MAX)
    if not any(ch.isdigit() for ch in value):
        raise Invalid("customer_code.no_digit")
    return value


# --- names ----------------------------------------------------------------------------------------------


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
    value = _collapse(text).translate(_QUOTES)
    if not value:
        raise Invalid("name.empty")
    if any(unicodedata.category(ch).startswith("N") for ch in value):
        raise Invalid("name.digits")
    bad = _bad_chars(value, lambda ch: _is_letter(ch) or _is_mark(ch) or ch in " '-")
    if bad:
        raise Invalid("name.bad_chars", chars=bad)
    _check_length(value, "name", NAME_MIN, NAME_MAX)
    if sum(_is_letter(ch) for ch in value) < MIN_LETTERS:
        raise Invalid("name.too_few_letters", min=MIN_LETTERS)
    return value


_COMPANY_PUNCTUATION = frozenset(" .,&'-/()+\"")


def _is_company_char(ch: str) -> bool:
    return _is_letter(ch) or _is_mark(ch) or unicodedata.category(ch) == "Nd" or ch in _COMPANY_PUNCTUATION


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
    value = _collapse(text).translate(_QUOTES)
    if not value:
        raise Invalid("company.empty")
    bad = _bad_chars(value, _is_company_char)
    if bad:
        raise Invalid("company.bad_chars", chars=bad)
    _check_length(value, "company", COMPANY_MIN, COMPANY_MAX)
    if not any(_is_letter(ch) for ch in value):
        raise Invalid("company.no_letter")
    return value


# --- codice fiscale / partita IVA -----------------------------------------------------------------------

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


def tax_code(text: str, kind: str) -> str:
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
        bad = _bad_chars(code, lambda ch: ch.isascii() and ch.isalnum())
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


# --- phone ----------------------------------------------------------------------------------------------


# Valid numbers that cannot be a customer's own line: toll-free (800), premium-rate (899), shared-cost...
_NOT_A_PERSONS_PHONE = frozenset(
    {
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.PAGER,
        phonenumbers.PhoneNumberType.VOICEMAIL,
    }
)


def phone(text: str) -> str:
    """A valid phone number in E.164 ("+393471234567").

    Without a prefix it is Italian; other countries need "+" or "00". A bare "39..." that is too long to
    be an Italian national number (as Telegram's contact button sends it) is read as +39 by phonenumbers.
    """
    raw = text.strip()
    if not raw:
        raise Invalid("phone.empty")
    bad = _bad_chars(raw, lambda ch: ch.isdecimal() or ch.isspace() or ch in "+-.()/")
    if bad:
        raise Invalid("phone.bad_chars", chars=bad)
    digits = "".join(ch for ch in raw if ch.isdecimal())
    if not digits:
        raise Invalid("phone.invalid")
    # Keep a "+" only where it belongs: before the first digit ("(+39) 347..." included).
    plus = "+" if "+" in raw[: raw.index(digits[0])] else ""
    try:
        number = phonenumbers.parse(plus + digits, "IT")
    except phonenumbers.NumberParseException:
        raise Invalid("phone.invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid("phone.invalid")
    if phonenumbers.number_type(number) in _NOT_A_PERSONS_PHONE:
        raise Invalid("phone.not_personal")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- e-mail ---------------------------------------------------------------------------------------------


def email(text: str) -> str:
    """An e-mail address, syntax only (no DNS), returned entirely lower-cased."""
    value = text.strip()
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


# --- password -------------------------------------------------------------------------------------------

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


def is_common_password(text: str) -> bool:
    """True when the password, ignoring case, is on the list, or is a listed word (4+ characters)
    followed only by digits and symbols ("Dragon2024!"), or is one of the bot's published examples
    (however spaced or capitalised)."""
    if _squeeze(text) in {_squeeze(example) for example in PUBLISHED_PASSWORDS}:
        return True
    common = _common_passwords()
    lowered = text.strip().casefold()
    if lowered in common:
        return True
    base = _TRAILING_JUNK.sub("", lowered)
    return len(base) >= _COMMON_BASE_MIN and base in common


_ASCII_NON_ALNUM = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalnum()))


def _squeeze(text: str) -> str:
    """Folded letters and digits only, so "Mario.Rossi-80" and "mariorossi80" compare equal."""
    if text.isascii():  # folding ASCII is lower-casing
        return text.lower().translate(_ASCII_NON_ALNUM)
    return "".join(ch for ch in _fold(text) if ch.isalnum())


def _personal_fragments(personal: Iterable[str | None]) -> set[str]:
    fragments: set[str] = set()
    for item in personal:
        if not item:
            continue
        fragments.add(_squeeze(item))
        fragments.update(re.findall(r"[^\W\d_]+", _fold(item)))  # each word of a multi-word name
    return {f for f in fragments if len(f) >= _PERSONAL_MIN and f not in _NAME_NOISE}


def _is_forbidden_control(ch: str) -> bool:
    # ZERO WIDTH JOINER (Cf) is part of emoji sequences such as family or flag emoji: allow it.
    return ch != "\u200d" and unicodedata.category(ch) in ("Cc", "Cf", "Cs")


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


def password(text: str, personal: Iterable[str | None] = ()) -> str:
    """Check a new password and return it unchanged (it is never stripped or normalised).

    `personal` holds the customer's own data (customer code, tax code, names, company name and the
    e-mail's local part, not the whole address); the password may not contain any of them.
    """
    _check_length(text, "password", PASSWORD_MIN, PASSWORD_MAX)
    if any(_is_forbidden_control(ch) for ch in text):
        raise Invalid("password.control_chars")
    size = len(text.encode("utf-8"))
    if size > PASSWORD_MAX_BYTES:  # bcrypt ignores everything after 72 bytes
        raise Invalid("password.too_many_bytes", max_bytes=PASSWORD_MAX_BYTES, bytes=size)
    if is_common_password(text):
        raise Invalid("password.common")
    squeezed = _squeeze(text)
    if any(fragment in squeezed for fragment in _personal_fragments(personal)):
        raise Invalid("password.personal")
    return text


# --- security question and answer -----------------------------------------------------------------------


def security_question(text: str) -> str:
    """A question the customer writes for themselves: whitespace collapsed, 10-200 characters."""
    value = _collapse(text)
    if not value:
        raise Invalid("question.empty")
    _check_length(value, "question", QUESTION_MIN, QUESTION_MAX)
    if sum(_is_letter(ch) for ch in value) < MIN_LETTERS:
        raise Invalid("question.too_few_letters", min=MIN_LETTERS)
    # Shown back to the customer and stored: invisible characters cannot be read, and PostgreSQL refuses
    # NUL in text, so a question holding one could never be saved there.
    if any(_is_forbidden_control(ch) for ch in value):
        raise Invalid("question.control_chars")
    return value


def normalize_answer(text: str) -> str:
    """The form of an answer that gets hashed and compared.

    Case, accents and extra whitespace do not matter, and typographic quotes count as ASCII ones
    ("Sant’Anna" from a phone equals "Sant'Anna" from a PC). Changing this invalidates stored answers.
    """
    return " ".join(_fold(text.translate(_QUOTES)).split())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    """Whether `needle` occurs as consecutive whole words in `haystack`."""
    size = len(needle)
    return size > 0 and any(haystack[i : i + size] == needle for i in range(len(haystack) - size + 1))


def security_answer(text: str, question: str) -> str:
    """Return the normalised answer (see `normalize_answer`); it may not be given away by the question."""
    value = normalize_answer(text)
    if not value:
        raise Invalid("answer.empty")
    _check_length(value, "answer", ANSWER_MIN, ANSWER_MAX)
    # Invisible characters could not be typed again at recovery (and a lone surrogate has no UTF-8 form).
    if any(_is_forbidden_control(ch) for ch in value):
        raise Invalid("answer.control_chars")
    if len(value.encode()) > PASSWORD_MAX_BYTES:
        # The normalised answer is bcrypt-hashed, and bcrypt takes at most 72 bytes.
        raise Invalid("answer.too_many_bytes", max_bytes=PASSWORD_MAX_BYTES, bytes=len(value.encode()))
    # Whole words only: "ma" is not "in" a question containing "mamma".
    if _contains_words(_words(normalize_answer(question)), _words(value)):
        raise Invalid("answer.in_question")
    return value


# --- matching keys --------------------------------------------------------------------------------------


def person_key(text: str) -> str:
    """Key for comparing names: folded letters only, so "D'Angelo", "d angelo" and "DANGELO" match."""
    if text.isascii():  # folding ASCII is lower-casing; its letters are a-z
        return text.lower().translate(_ASCII_NON_LETTERS)
    return "".join(ch for ch in _fold(text) if ch.isalpha())


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
    key = _squeeze(text.replace("&", " e "))
    for variant, canonical in _LEGAL_FORMS:
        if len(key) > len(variant) and key.endswith(variant):
            return key[: -len(variant)] + canonical
    return key


# --- masks for summaries --------------------------------------------------------------------------------


def mask_tax_code(code: str) -> str:
    """Keep the first 3 and last 2 characters: "RSSMRA80A01H501U" -> "RSS•••••••••••1U"."""
    code = code.strip()
    if len(code) <= 5:
        return MASK * len(code)
    return code[:3] + MASK * (len(code) - 5) + code[-2:]


def mask_phone(e164: str) -> str:
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


def mask_email(address: str) -> str:
    """Keep the first and last character of the local part and the domain: "m•••o@example.it"."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return MASK * 3
    tail = local[-1] if len(local) > 2 else ""
    return f"{local[0]}{MASK * 3}{tail}@{domain}"


# --- keyword answers ------------------------------------------------------------------------------------

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
    phrase = _phrase(text)
    if phrase in _PERSON_WORDS:
        return PERSON
    if phrase in _BUSINESS_WORDS:
        return BUSINESS
    raise Invalid("kind.unknown")


def is_skip(text: str) -> bool:
    """Whether a reply means "skip this optional step" (the "Salta"/"Skip" button label included)."""
    return _phrase(text) in _SKIP_WORDS
