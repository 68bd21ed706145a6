"""Unit tests for the pure validation rules (no database, no Telegram)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pytest
from stdnum import luhn
from stdnum.it import codicefiscale, iva

from unogas_bot import rules
from unogas_bot.rules import REASONS, Invalid


def reason_of(func: Callable[..., object], *args: object, **kwargs: object) -> str:
    """Call a rule that must fail and return its reason, checking the reason is a declared one."""
    with pytest.raises(Invalid) as info:
        func(*args, **kwargs)
    assert info.value.reason in REASONS
    return info.value.reason


def params_of(func: Callable[..., object], *args: object, **kwargs: object) -> dict[str, object]:
    with pytest.raises(Invalid) as info:
        func(*args, **kwargs)
    return info.value.params


def cf(first15: str) -> str:
    """A codice fiscale with the check character computed by stdnum."""
    return first15 + codicefiscale.calc_check_digit(first15)


def wrong_check(code: str) -> str:
    """The same code with a different (wrong) check character."""
    return code[:-1] + ("A" if code[-1] != "A" else "B")


def piva(first10: str) -> str:
    """A partita IVA with the Luhn check digit computed by stdnum."""
    return first10 + luhn.calc_check_digit(first10)


MARIO = cf("RSSMRA80A01H501")  # man born 1 January 1980 in Rome
VAT = piva("1234567001")


# --- Invalid and REASONS ---------------------------------------------------------------------------------


def test_invalid_carries_reason_and_params() -> None:
    error = Invalid("customer_code.too_short", min=4, length=2)
    assert isinstance(error, ValueError)
    assert error.reason == "customer_code.too_short"
    assert error.params == {"min": 4, "length": 2}
    assert str(error) == "customer_code.too_short"


def test_reasons_are_dotted_keys() -> None:
    for reason in REASONS:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", reason), reason


# One input per reason: every declared key must be reachable, and nothing undeclared may exist.
EXAMPLES: dict[str, Callable[[], object]] = {
    "customer_code.empty": lambda: rules.customer_code.validate("  "),
    "customer_code.bad_chars": lambda: rules.customer_code.validate("AB#123"),
    "customer_code.too_short": lambda: rules.customer_code.validate("A1"),
    "customer_code.too_long": lambda: rules.customer_code.validate("A" * 20 + "1"),
    "customer_code.no_digit": lambda: rules.customer_code.validate("ABCDE"),
    "name.empty": lambda: rules.names.person_name(" "),
    "name.digits": lambda: rules.names.person_name("Mario2"),
    "name.bad_chars": lambda: rules.names.person_name("Mario_Rossi"),
    "name.too_short": lambda: rules.names.person_name("A"),
    "name.too_long": lambda: rules.names.person_name("A" * 51),
    "name.too_few_letters": lambda: rules.names.person_name("A-"),
    "company.empty": lambda: rules.names.company_name(""),
    "company.bad_chars": lambda: rules.names.company_name("Rossi@srl"),
    "company.too_short": lambda: rules.names.company_name("A"),
    "company.too_long": lambda: rules.names.company_name("A" * 121),
    "company.no_letter": lambda: rules.names.company_name("123"),
    "tax_code.empty": lambda: rules.tax_code.validate(" ", "person"),
    "tax_code.bad_chars": lambda: rules.tax_code.validate(MARIO[:-1] + "@", "person"),
    "tax_code.bad_length": lambda: rules.tax_code.validate(MARIO[:-1], "person"),
    "tax_code.bad_length_business": lambda: rules.tax_code.validate(VAT[:-1], "business"),
    "tax_code.bad_format": lambda: rules.tax_code.validate(cf("RSS1RA80A01H501"), "person"),
    "tax_code.bad_date": lambda: rules.tax_code.validate(cf("RSSMRA80A32H501"), "person"),
    "tax_code.bad_checksum": lambda: rules.tax_code.validate(wrong_check(MARIO), "person"),
    "tax_code.vat_for_person": lambda: rules.tax_code.validate(VAT, "person"),
    "tax_code.vat_bad_format": lambda: rules.tax_code.validate("00000000000", "business"),
    "tax_code.vat_bad_checksum": lambda: rules.tax_code.validate(
        VAT[:-1] + str((int(VAT[-1]) + 1) % 10), "business"
    ),
    "phone.empty": lambda: rules.phone.validate(""),
    "phone.bad_chars": lambda: rules.phone.validate("347 abc"),
    "phone.invalid": lambda: rules.phone.validate("12"),
    "phone.not_personal": lambda: rules.phone.validate("800 123 456"),
    "email.empty": lambda: rules.email.validate(""),
    "email.too_long": lambda: rules.email.validate("a" * 250 + "@x.it"),
    "email.no_at": lambda: rules.email.validate("mario.example.it"),
    "email.spaces": lambda: rules.email.validate("mario rossi@example.it"),
    "email.bad_domain": lambda: rules.email.validate("mario@localhost"),
    "email.invalid": lambda: rules.email.validate("mario..rossi@example.it"),
    "email.look_alike": lambda: rules.email.validate("m\u0430rio@example.it"),  # a Cyrillic "а"
    "password.too_short": lambda: rules.password.validate("Zq7!mB2"),
    "password.too_long": lambda: rules.password.validate("Zq7!mB2x" * 8 + "a"),
    "password.too_many_bytes": lambda: rules.password.validate("😀" * 30),
    "password.control_chars": lambda: rules.password.validate("Zq7!\x00mB2x"),
    "password.common": lambda: rules.password.validate("password1"),
    "password.personal": lambda: rules.password.validate("Zq7!rossi", ["Rossi"]),
    "question.empty": lambda: rules.answer.validate_question("   "),
    "question.too_short": lambda: rules.answer.validate_question("Colore?"),
    "question.too_long": lambda: rules.answer.validate_question("a" * 201),
    "question.too_few_letters": lambda: rules.answer.validate_question("1234567890"),
    "question.control_chars": lambda: rules.answer.validate_question("Come si chiama\x00 il gatto?"),
    "answer.empty": lambda: rules.answer.validate("  ", "Nome del mio primo cane?"),
    "answer.too_short": lambda: rules.answer.validate("a", "Nome del mio primo cane?"),
    "answer.too_long": lambda: rules.answer.validate("a" * 61, "Nome del mio primo cane?"),
    "answer.too_many_bytes": lambda: rules.answer.validate("🐈" * 19, "Nome del mio primo cane?"),
    "answer.in_question": lambda: rules.answer.validate("cane", "Nome del mio primo cane?"),
    "answer.control_chars": lambda: rules.answer.validate("Bri\x00ciola", "Nome del mio primo cane?"),
    "kind.unknown": lambda: rules.replies.parse_kind("boh"),
}


def test_examples_cover_exactly_the_declared_reasons() -> None:
    assert set(EXAMPLES) == REASONS


@pytest.mark.parametrize("reason", sorted(EXAMPLES))
def test_each_reason_is_raised(reason: str) -> None:
    assert reason_of(EXAMPLES[reason]) == reason


# --- customer_code ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AB1234", "AB1234"),
        (" ab 12-34/x ", "AB12-34/X"),
        ("a123", "A123"),
        ("1234", "1234"),
        ("A" * 19 + "1", "A" * 19 + "1"),
        ("12\t34\n56", "123456"),
    ],
)
def test_customer_code_ok(text: str, expected: str) -> None:
    assert rules.customer_code.validate(text) == expected


@pytest.mark.parametrize(
    ("text", "reason", "params"),
    [
        ("", "customer_code.empty", {}),
        (" \t ", "customer_code.empty", {}),
        ("AB_1234", "customer_code.bad_chars", {"chars": "_"}),
        ("AB#12@#", "customer_code.bad_chars", {"chars": "#@"}),
        ("ÀB123", "customer_code.bad_chars", {"chars": "À"}),
        ("straße1", "customer_code.bad_chars", {"chars": "ß"}),
        ("A1", "customer_code.too_short", {"min": 4, "length": 2}),
        ("A 1 2", "customer_code.too_short", {"min": 4, "length": 3}),
        ("A" * 20 + "1", "customer_code.too_long", {"max": 20, "length": 21}),
        ("ABCDE", "customer_code.no_digit", {}),
        ("AB-CD/", "customer_code.no_digit", {}),
    ],
)
def test_customer_code_bad(text: str, reason: str, params: dict[str, object]) -> None:
    assert reason_of(rules.customer_code.validate, text) == reason
    assert params_of(rules.customer_code.validate, text) == params


# --- person_name -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mario", "Mario"),
        ("  maria   grazia ", "maria grazia"),
        ("D'Angelo", "D'Angelo"),
        ("D’Angelo", "D'Angelo"),
        ("Rossi-Bianchi", "Rossi-Bianchi"),
        ("Nicolò", "Nicolò"),
        ("Nicolo\u0300", "Nicolò"),  # decomposed input is NFC-normalised
        ("Nicolo'", "Nicolo'"),
        ("Иван", "Иван"),
        ("Ζωή", "Ζωή"),
        ("Lu", "Lu"),
        ("A" * 50, "A" * 50),
    ],
)
def test_person_name_ok(text: str, expected: str) -> None:
    assert rules.names.person_name(text) == expected


@pytest.mark.parametrize(
    ("text", "reason", "params"),
    [
        ("", "name.empty", {}),
        ("  \n ", "name.empty", {}),
        ("Mario2", "name.digits", {}),
        ("Mario III 3", "name.digits", {}),
        ("Mario.", "name.bad_chars", {"chars": "."}),
        ("Mario_Rossi!", "name.bad_chars", {"chars": "_!"}),
        ("Mario 🙂", "name.bad_chars", {"chars": "🙂"}),
        ("A", "name.too_short", {"min": 2, "length": 1}),
        ("A" * 51, "name.too_long", {"max": 50, "length": 51}),
        ("--", "name.too_few_letters", {"min": 2}),
        ("A'", "name.too_few_letters", {"min": 2}),
    ],
)
def test_person_name_bad(text: str, reason: str, params: dict[str, object]) -> None:
    assert reason_of(rules.names.person_name, text) == reason
    assert params_of(rules.names.person_name, text) == params


# --- company_name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Rossi   Impianti S.r.l. ", "Rossi Impianti S.r.l."),
        ("3M Italia S.p.A.", "3M Italia S.p.A."),
        ("Bar “Da Mario” & C. s.n.c.", 'Bar "Da Mario" & C. s.n.c.'),
        ("L’Artigiano di Nicolò", "L'Artigiano di Nicolò"),
        ("A+B (Italia), s/r - 2", "A+B (Italia), s/r - 2"),
        ("Q8", "Q8"),
        ("A" * 120, "A" * 120),
    ],
)
def test_company_name_ok(text: str, expected: str) -> None:
    assert rules.names.company_name(text) == expected


@pytest.mark.parametrize(
    ("text", "reason", "params"),
    [
        ("", "company.empty", {}),
        ("Rossi@srl", "company.bad_chars", {"chars": "@"}),
        ("Rossi #1 srl!", "company.bad_chars", {"chars": "#!"}),
        ("A", "company.too_short", {"min": 2, "length": 1}),
        ("A" * 121, "company.too_long", {"max": 120, "length": 121}),
        ("123", "company.no_letter", {}),
        ("(1) - 2", "company.no_letter", {}),
    ],
)
def test_company_name_bad(text: str, reason: str, params: dict[str, object]) -> None:
    assert reason_of(rules.names.company_name, text) == reason
    assert params_of(rules.names.company_name, text) == params


# --- tax_code: codice fiscale ----------------------------------------------------------------------------


def test_generated_codes_are_valid_for_stdnum() -> None:
    assert MARIO == "RSSMRA80A01H501U"
    assert codicefiscale.is_valid(MARIO)
    assert iva.is_valid(VAT)


@pytest.mark.parametrize(
    "code",
    [
        MARIO,
        "RCCMNL83S18D969H",  # stdnum's documented example
        cf("BNCLRA85M52F205"),  # woman, day 52 = 12th
        cf("BNCLRA85M41F205"),  # woman, 1st
        cf("BNCLRA85M71F205"),  # woman, 31 August
        cf("RSSMRA80T31H501"),  # 31 December
        cf("RSSMRA84B29H501"),  # 29 February of a leap year
        cf("RSSMRA00B29H501"),  # 2000 was a leap year
        cf("BNCLRA84B69F205"),  # woman, 29 February 1984
        cf("RSSMRA80D30H501"),  # 30 April
        cf("RSSMRA80A01H50M"),  # omocodia: last place digit 1 -> M
        cf("RSSMRA80A01HRLM"),  # omocodia in all place digits
        cf("RSSMRA80ALMHRLM"),  # ... and in the day (01 -> LM)
        cf("RSSMRAULALMHRLM"),  # ... and in the year (80 -> UL): fully omocodic
        cf("BNCLRA85MQNF205"),  # woman, day 52 written QN
    ],
)
def test_tax_code_person_ok(code: str) -> None:
    assert rules.tax_code.validate(code, "person") == code
    assert rules.tax_code.validate(code, "business") == code  # sole traders use their personal code


@pytest.mark.parametrize(
    "typed",
    [
        "rssmra80a01h501u",
        " RSS MRA 80A01 H501U ",
        "RSS.MRA.80A01.H501U",
        "RSS-MRA-80A01-H501U",
        "rss–mra 80a01h501u",
    ],
)
def test_tax_code_person_normalised(typed: str) -> None:
    assert rules.tax_code.validate(typed, "person") == MARIO


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "tax_code.empty"),
        (" . - ", "tax_code.empty"),
        (wrong_check(MARIO), "tax_code.bad_checksum"),
        (wrong_check(cf("RSSMRAULALMHRLM")), "tax_code.bad_checksum"),
        (MARIO[:9] + "10" + MARIO[11:], "tax_code.bad_checksum"),  # day typo, same date rules pass
        (cf("RSSMRA80A81H501"), "tax_code.bad_date"),  # stdnum takes 81 modulo 40 and accepts it
        (cf("RSSMRA80A99H501"), "tax_code.bad_date"),
        (cf("RSSMRA80AUVH501"), "tax_code.bad_date"),  # omocode for 99
        (cf("RSSMRA80A32H501"), "tax_code.bad_date"),
        (cf("RSSMRA80A40H501"), "tax_code.bad_date"),
        (cf("RSSMRA80A00H501"), "tax_code.bad_date"),
        (cf("RSSMRA80A72H501"), "tax_code.bad_date"),
        (cf("RSSMRA80D31H501"), "tax_code.bad_date"),  # 31 April
        (cf("BNCLRA80D71F205"), "tax_code.bad_date"),  # 31 April, woman
        (cf("RSSMRA80B30H501"), "tax_code.bad_date"),  # 30 February
        (cf("RSSMRA83B29H501"), "tax_code.bad_date"),  # 29 February, not a leap year
        (cf("RSSMRA80F01H501"), "tax_code.bad_date"),  # F is not a month letter
        (cf("RSS1RA80A01H501"), "tax_code.bad_format"),  # digit among the name letters
        (cf("RSSMRA8XA01H501"), "tax_code.bad_format"),  # X is not an omocode letter
        (cf("RSSMRA80A01150A"), "tax_code.bad_format"),  # place code must start with a letter
        (MARIO[:-1] + "7", "tax_code.bad_format"),  # check character must be a letter
        (VAT, "tax_code.vat_for_person"),
        ("IT" + VAT, "tax_code.vat_for_person"),
        ("12345678901", "tax_code.vat_for_person"),  # any 11 digits, even with a wrong check digit
        (MARIO[:-1], "tax_code.bad_length"),
        (MARIO + "A", "tax_code.bad_length"),
        ("RSSMRA80A01", "tax_code.bad_length"),
        (MARIO[:-1] + "@", "tax_code.bad_chars"),
        ("RSSMRA80A01H501È", "tax_code.bad_chars"),
    ],
)
def test_tax_code_person_bad(code: str, reason: str) -> None:
    assert reason_of(rules.tax_code.validate, code, "person") == reason


def test_tax_code_day_81_is_accepted_by_stdnum_but_not_by_us() -> None:
    code = cf("RSSMRA80A81H501")
    assert codicefiscale.is_valid(code)
    assert reason_of(rules.tax_code.validate, code, "person") == "tax_code.bad_date"


@pytest.mark.parametrize(
    ("code", "reason", "params"),
    [
        (MARIO[:-1], "tax_code.bad_length", {"length": 15, "expected": 16}),
        ("RSS MRA", "tax_code.bad_length", {"length": 6, "expected": 16}),
        ("RSSMRA80A01H501U#!#", "tax_code.bad_chars", {"chars": "#!"}),
        ("1234567890", "tax_code.bad_length_business", {"length": 10}),
        ("123456789012", "tax_code.bad_length_business", {"length": 12}),
    ],
)
def test_tax_code_params(code: str, reason: str, params: dict[str, object]) -> None:
    kind = "business" if reason.endswith("business") else "person"
    assert reason_of(rules.tax_code.validate, code, kind) == reason
    assert params_of(rules.tax_code.validate, code, kind) == params


# --- tax_code: partita IVA -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (VAT, VAT),
        ("00743110157", "00743110157"),  # stdnum's documented example
        (piva("0123456100"), piva("0123456100")),
        (piva("9876543888"), piva("9876543888")),
        (" " + VAT[:5] + " " + VAT[5:] + " ", VAT),
        ("IT" + VAT, VAT),
        ("it " + VAT, VAT),
        (VAT[:3] + "." + VAT[3:7] + "-" + VAT[7:], VAT),
    ],
)
def test_tax_code_business_vat_ok(typed: str, expected: str) -> None:
    assert rules.tax_code.validate(typed, "business") == expected


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (VAT[:-1] + str((int(VAT[-1]) + 1) % 10), "tax_code.vat_bad_checksum"),
        ("00743110158", "tax_code.vat_bad_checksum"),
        ("00000000000", "tax_code.vat_bad_format"),  # company number 0000000
        (piva("1234567500"), "tax_code.vat_bad_format"),  # no tax office 500
        ("1234567A012", "tax_code.vat_bad_format"),  # 11 characters but not all digits
        (VAT[:-1], "tax_code.bad_length_business"),
        (wrong_check(MARIO), "tax_code.bad_checksum"),
        (cf("RSSMRA80A81H501"), "tax_code.bad_date"),
        ("", "tax_code.empty"),
    ],
)
def test_tax_code_business_bad(code: str, reason: str) -> None:
    assert reason_of(rules.tax_code.validate, code, "business") == reason


def test_tax_code_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown customer kind") as info:
        rules.tax_code.validate(MARIO, "people")
    assert not isinstance(info.value, Invalid)


# --- phone -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+39 347 123 4567", "+393471234567"),
        ("0039 347-123-4567", "+393471234567"),
        ("347.123.4567", "+393471234567"),
        ("3471234567", "+393471234567"),
        ("(+39) 347/1234567", "+393471234567"),
        ("393471234567", "+393471234567"),  # Telegram contact without "+"
        ("3921234567", "+393921234567"),  # national mobile that starts with 39
        ("06 1234 5678", "+390612345678"),  # Rome landline keeps its 0
        ("(06) 1234-5678", "+390612345678"),
        ("+39 (0)6 12345678", "+390612345678"),
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911 123456", "+447911123456"),
        ("  +393471234567  ", "+393471234567"),
    ],
)
def test_phone_ok(text: str, expected: str) -> None:
    assert rules.phone.validate(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "phone.empty"),
        ("   ", "phone.empty"),
        ("12", "phone.invalid"),
        ("800 123 456", "phone.not_personal"),  # numero verde
        ("899 123 456", "phone.not_personal"),  # premium rate
        ("+", "phone.invalid"),
        ("--", "phone.invalid"),
        ("+39 347 123", "phone.invalid"),
        ("+44 1234", "phone.invalid"),
        ("3471234567890123", "phone.invalid"),
        ("tre quattro sette", "phone.bad_chars"),
        ("347 123 4567 int. 2", "phone.bad_chars"),
        ("+39 347 123 456#", "phone.bad_chars"),
    ],
)
def test_phone_bad(text: str, reason: str) -> None:
    assert reason_of(rules.phone.validate, text) == reason


def test_phone_bad_chars_params() -> None:
    assert params_of(rules.phone.validate, "347 abc a") == {"chars": "abc"}


# --- email -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mario.rossi@example.it", "mario.rossi@example.it"),
        ("Mario.Rossi@Example.IT", "mario.rossi@example.it"),
        ("  mario+bollette@gmail.com \n", "mario+bollette@gmail.com"),
        ("m@x.it", "m@x.it"),
        ("Nicolò@Example.it", "nicolò@example.it"),
        ("a" * 64 + "@" + "b" * 60 + ".it", "a" * 64 + "@" + "b" * 60 + ".it"),
        # NFKC on the whole address: full-width and compatibility forms are the address they look like.
        ("\uff4d\uff41\uff52\uff49\uff4f.rossi@example.it", "mario.rossi@example.it"),
        ("mario.rossi@\uff45xample.it", "mario.rossi@example.it"),
        ("\ufb01lippo@example.it", "filippo@example.it"),  # the "fi" ligature
        ("\u5c71\u7530@example.it", "山田@example.it"),  # another script, imitating no Latin letter
    ],
)
def test_email_ok(text: str, expected: str) -> None:
    assert rules.email.validate(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "m\u0430rio.rossi@example.it",  # a Cyrillic "а" among Latin letters
        "\u0440\u043e\u0440\u0440\u0430@example.it",  # all Cyrillic, and reads as "poppa"
        "mario.r\u03bfssi@example.it",  # a Greek "ο"
        "mar\u0131o@example.it",  # a dotless "ı"
        "mario.rossi@ex\u0430mple.it",  # the domain too
        # A combining mark Unicode has no letter for, on an ASCII letter: a dot above an "i" is invisible,
        # an overlay barely seen (the scripts check counts marks as no script, so it saw none of these).
        "mari\u0307o.rossi@example.it",
        "mario.rossi@example.i\u0307t",
        "mario\u0335.rossi@example.it",
    ],
)
def test_look_alike_email_addresses_are_refused(text: str) -> None:
    assert reason_of(rules.email.validate, text) == "email.look_alike"
    # Typed to log in, it is only looked up: a profile saved before the rule keeps its login ID.
    assert rules.email.login_id(text) == unicodedata.normalize("NFKC", text).lower()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "email.empty"),
        ("  ", "email.empty"),
        ("mario.rossi", "email.no_at"),
        ("mario.rossi(at)example.it", "email.no_at"),
        ("mario rossi@example.it", "email.spaces"),
        ("mario@example .it", "email.spaces"),
        ("mario@localhost", "email.bad_domain"),
        ("mario@example", "email.bad_domain"),
        ("mario@", "email.bad_domain"),
        ("mario@gmail.c", "email.bad_domain"),
        ("mario@.it", "email.bad_domain"),
        ("mario@example..it", "email.bad_domain"),
        ("mario@example.it.", "email.bad_domain"),
        ("@example.it", "email.invalid"),
        ("mario@@example.it", "email.invalid"),
        ("mario..rossi@example.it", "email.invalid"),
        ("mario,rossi@example.it", "email.invalid"),
        ("mario@exa_mple.it", "email.invalid"),
        ("mario@example.local", "email.invalid"),
    ],
)
def test_email_bad(text: str, reason: str) -> None:
    assert reason_of(rules.email.validate, text) == reason


def test_email_invalid_hides_library_detail() -> None:
    assert params_of(rules.email.validate, "mario..rossi@example.it") == {}


def test_email_too_long() -> None:
    text = "a" * 60 + "@" + "b" * 190 + ".com"  # 255 characters
    assert reason_of(rules.email.validate, text) == "email.too_long"
    assert params_of(rules.email.validate, text) == {"max": 254, "length": 255}


# --- password --------------------------------------------------------------------------------------------

GOOD = "Zq7!mB2x"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,  # exactly 8 characters
        GOOD * 8,  # exactly 64 characters
        "  il mio gatto è bellissimo  ",  # passphrase with spaces and accents, kept as typed
        "😀" * 18,  # 72 bytes: bcrypt's limit exactly
        "famiglia 👨‍👩‍👧 unita",  # emoji sequence with zero width joiners
        "Abc!!!999x",
        "Дом-на-Волге-7",
    ],
)
def test_password_ok_and_unchanged(text: str) -> None:
    assert rules.password.validate(text) == text


@pytest.mark.parametrize(
    ("text", "reason", "params"),
    [
        ("", "password.too_short", {"min": 8, "length": 0}),
        ("Zq7!mB2", "password.too_short", {"min": 8, "length": 7}),
        (GOOD * 8 + "a", "password.too_long", {"max": 64, "length": 65}),
        ("😀" * 19, "password.too_many_bytes", {"max_bytes": 72, "bytes": 76}),
        ("😀" * 30, "password.too_many_bytes", {"max_bytes": 72, "bytes": 120}),
        ("Zq7!\x00mB2x", "password.control_chars", {}),
        ("Zq7!mB2x\n", "password.control_chars", {}),
        ("Zq7!\tmB2x", "password.control_chars", {}),
        ("Zq7!\u200bmB2x", "password.control_chars", {}),  # zero width space
        ("Zq7!\u202emB2x", "password.control_chars", {}),  # right-to-left override
        ("password1", "password.common", {}),
        ("Qwerty123", "password.common", {}),
        ("PASSWORD1", "password.common", {}),
        ("Dragon2024!", "password.common", {}),  # listed word + digits and symbols
        ("juventus 1897", "password.common", {}),
        ("  password1  ", "password.common", {}),
    ],
)
def test_password_bad(text: str, reason: str, params: dict[str, object]) -> None:
    assert reason_of(rules.password.validate, text) == reason
    assert params_of(rules.password.validate, text) == params


PERSONAL = [
    "AB-1234",
    "RSSMRA80A01H501U",
    "Maria Grazia",
    "Del Piero",
    "Rossi Impianti S.r.l.",
    "m.bianchi80",
]


@pytest.mark.parametrize(
    "text",
    [
        "xxDELPIEROxx-2024",  # surname, any case
        "MyGrazia#2024!",  # one word of a multi-word first name
        "MariaGrazia!!",
        "PIERO-e-basta",
        "impianti.nuovi.9",  # a word of the company name
        "my ab1234 code",  # customer code without its dash
        "x rssmra80a01h501u",  # tax code
        "M.Bianchi80#",  # e-mail local part
        "bianchi-forever",  # a word of the e-mail local part
        "Grázia_sempre",  # accents do not help
    ],
)
def test_password_personal(text: str) -> None:
    assert reason_of(rules.password.validate, text, PERSONAL) == "password.personal"


@pytest.mark.parametrize(
    ("text", "personal"),
    [
        ("Modello di carta 7", ["Del Piero"]),  # "del" is a particle, not personal
        ("una spa a Ischia!", ["Rossi Impianti S.p.A."]),  # legal forms are not personal
        ("Lilla bianca 9", ["Li"]),  # items under 3 characters are ignored
        ("Zq7!mB2x", ["", None, "  "]),
        ("Zq7!mB2x", []),
    ],
)
def test_password_not_personal(text: str, personal: list[str | None]) -> None:
    assert rules.password.validate(text, personal) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password", True),
        ("PassWord", True),
        ("Password2024!", True),
        ("abc123", True),
        ("abc!!!999", False),  # "abc" is listed, but bases under 4 letters only count when exact
        ("Zq7!mB2x", False),
        ("il mio gatto è bellissimo", False),
    ],
)
def test_is_common_password(text: str, expected: bool) -> None:
    assert rules.password.is_common(text) is expected


def test_common_password_list_is_loaded_once() -> None:
    rules.password.is_common("warm up")
    before = rules.password._common_passwords.cache_info()
    rules.password.is_common("password")
    after = rules.password._common_passwords.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 1
    assert len(rules.password._common_passwords()) > 10_000


# --- security question and answer ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Nome   del mio\n primo cane?  ", "Nome del mio primo cane?"),
        ("Mio cane?!", "Mio cane?!"),  # exactly 10 characters
        ("Anno 1999?", "Anno 1999?"),
        ("Q" * 200, "Q" * 200),
    ],
)
def test_security_question_ok(text: str, expected: str) -> None:
    assert rules.answer.validate_question(text) == expected


@pytest.mark.parametrize(
    ("text", "reason", "params"),
    [
        ("", "question.empty", {}),
        ("\n \t", "question.empty", {}),
        ("Colore?", "question.too_short", {"min": 10, "length": 7}),
        ("a" * 201, "question.too_long", {"max": 200, "length": 201}),
        ("1234567890", "question.too_few_letters", {"min": 2}),
        ("A 123456789?", "question.too_few_letters", {"min": 2}),
        ("Chi era\x00 il mio gatto?", "question.control_chars", {}),
        ("Chi era\u200b il mio gatto?", "question.control_chars", {}),
    ],
)
def test_security_question_bad(text: str, reason: str, params: dict[str, object]) -> None:
    assert reason_of(rules.answer.validate_question, text) == reason
    assert params_of(rules.answer.validate_question, text) == params


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Città  di  NAPOLI ", "citta di napoli"),
        ("Sant’Anna", "sant'anna"),
        ("Straße", "strasse"),
        ("a\tb\nc", "a b c"),
        ("ÉLODIE", "elodie"),
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert rules.answer.normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "question", "expected"),
    [
        ("  Città  di  NAPOLI ", "Dove sei nato?", "citta di napoli"),
        ("Fido", "Come si chiamava il tuo primo cane?", "fido"),
        ("ma", "Come si chiamava tua mamma?", "ma"),  # whole words only
        ("cane fido", "Nome del mio cane?", "cane fido"),
        ("a" * 60, "Nome del mio cane?", "a" * 60),
        ("?!", "Nome del mio cane?!", "?!"),  # no words, so nothing to find in the question
    ],
)
def test_security_answer_ok(text: str, question: str, expected: str) -> None:
    assert rules.answer.validate(text, question) == expected


@pytest.mark.parametrize(
    ("text", "question", "reason"),
    [
        ("   ", "Nome del mio cane?", "answer.empty"),
        ("a", "Nome del mio cane?", "answer.too_short"),
        ("à", "Nome del mio cane?", "answer.too_short"),
        ("a" * 61, "Nome del mio cane?", "answer.too_long"),
        ("Fido", "Il mio cane Fido come si chiamava?", "answer.in_question"),
        ("FIDÒ", "Il mio cane fido?", "answer.in_question"),
        ("primo cane", "Nome del mio primo cane?", "answer.in_question"),
        ("Nome del mio primo cane", "Nome del mio primo cane?", "answer.in_question"),
        ("Bri\x00ciola", "Nome del mio cane?", "answer.control_chars"),
        ("Briciola\ud800", "Nome del mio cane?", "answer.control_chars"),  # a lone surrogate: no UTF-8
    ],
)
def test_security_answer_bad(text: str, question: str, reason: str) -> None:
    assert reason_of(rules.answer.validate, text, question) == reason


def test_security_answer_length_params() -> None:
    assert params_of(rules.answer.validate, "  à ", "Nome del mio cane?") == {"min": 2, "length": 1}
    assert params_of(rules.answer.validate, "b" * 101, "Nome del mio cane?") == {"max": 60, "length": 101}


# --- matching keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["D'Angelo", "D’ANGELO", "d angelo", "DANGELO", " d-angelo "])
def test_person_key_same(text: str) -> None:
    assert rules.names.person_key(text) == "dangelo"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Nicolò", "NICOLO"),
        ("Rossi-Bianchi", "rossi bianchi"),
        ("Maria  Grazia", "MariaGrazia"),
        ("Straße", "STRASSE"),
    ],
)
def test_person_key_equal(left: str, right: str) -> None:
    assert rules.names.person_key(left) == rules.names.person_key(right)


def test_person_key_different_names_differ() -> None:
    assert rules.names.person_key("Rossi") != rules.names.person_key("Russo")


@pytest.mark.parametrize(
    "text",
    [
        "Rossi Impianti S.r.l.",
        "ROSSI IMPIANTI SRL",
        "Rossi Impianti s.r.l",
        "Rossi Impianti Srl.",
        "rossi impianti S. R. L.",
        "Rossi Impianti società a responsabilità limitata",
    ],
)
def test_company_key_srl(text: str) -> None:
    assert rules.names.company_key(text) == "rossiimpiantisrl"


@pytest.mark.parametrize(
    ("variants", "expected"),
    [
        (["Alfa S.r.l.s.", "ALFA SRLS", "Alfa srl semplificata"], "alfasrls"),
        (["Alfa S.p.A.", "ALFA SPA", "Alfa Società per Azioni"], "alfaspa"),
        (["Alfa S.a.s.", "Alfa sas", "Alfa società in accomandita semplice"], "alfasas"),
        (["Alfa S.n.c.", "ALFA SNC", "Alfa società in nome collettivo"], "alfasnc"),
        (["Alfa S.a.p.a.", "Alfa sapa", "Alfa società in accomandita per azioni"], "alfasapa"),
        (["Alfa S.c.a r.l.", "Alfa Scarl", "Alfa S.c.r.l.", "Alfa Soc. Coop. a r.l."], "alfascarl"),
        (["Alfa Coop.", "Alfa Società Cooperativa", "ALFA SOC. COOP.", "Alfa cooperativa"], "alfacoop"),
        (["Rossi & Figli", "Rossi e figli", "ROSSI E FIGLI"], "rossiefigli"),
        (["Caffè Nero", "CAFFE' NERO", "caffe nero"], "caffenero"),
    ],
)
def test_company_key_variants(variants: list[str], expected: str) -> None:
    assert [rules.names.company_key(text) for text in variants] == [expected] * len(variants)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Rossi Impianti Srl", "Rossi Impianti Spa"),
        ("Alfa Srl", "Beta Srl"),
        ("Rossi Impianti Srl", "Rossi Impianti"),
    ],
)
def test_company_key_different(left: str, right: str) -> None:
    assert rules.names.company_key(left) != rules.names.company_key(right)


def test_company_key_bare_legal_word_is_kept() -> None:
    assert rules.names.company_key("Cooperativa") == "cooperativa"


# --- masks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("RSSMRA80A01H501U", "RSS•••••••••••1U"),
        ("01234567890", "012••••••90"),
        ("ABCDEF", "ABC•EF"),
        ("ABCDE", "•••••"),
        ("", ""),
    ],
)
def test_mask_tax_code(code: str, expected: str) -> None:
    assert rules.masks.tax_code(code) == expected


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+393471234567", "+39 ••• ••• ••67"),
        ("+390612345678", "+39 ••• ••• ••78"),
        ("+447911123456", "+44 ••• ••• ••56"),
        ("+39612345", "+39 •• ••45"),
    ],
)
def test_mask_phone(e164: str, expected: str) -> None:
    assert rules.masks.phone(e164) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("mario@example.it", "m•••o@example.it"),
        ("mario.rossi@gmail.com", "m•••i@gmail.com"),
        ("ab@x.it", "a•••@x.it"),
        ("m@x.it", "m•••@x.it"),
        ("not an address", "•••"),
    ],
)
def test_mask_email(address: str, expected: str) -> None:
    assert rules.masks.email(address) == expected


# --- parse_kind and is_skip ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "persona",
        "Persona",
        " PERSONA FISICA ",
        "persona  fisica.",
        "privato",
        "Privata",
        "person",
        "👤 Persona",
    ],
)
def test_parse_kind_person(text: str) -> None:
    assert rules.replies.parse_kind(text) == "person"


@pytest.mark.parametrize(
    "text",
    [
        "azienda",
        "Impresa",
        "DITTA",
        "società",
        "Societa",
        "SOCIETÀ",
        "ente",
        "business",
        "Company",
        "P.IVA",
        "🏢 Azienda",
    ],
)
def test_parse_kind_business(text: str) -> None:
    assert rules.replies.parse_kind(text) == "business"


@pytest.mark.parametrize("text", ["", "boh", "1", "2", "persone", "sono una persona", "aziende"])
def test_parse_kind_unknown(text: str) -> None:
    assert reason_of(rules.replies.parse_kind, text) == "kind.unknown"


@pytest.mark.parametrize(
    "text", ["salta", "Salta", " SALTA ", "Skip", "skip", "nessuno", "Nessuna", "no", "No.", "⏭ Salta"]
)
def test_is_skip_true(text: str) -> None:
    assert rules.replies.is_skip(text) is True


@pytest.mark.parametrize("text", ["", "non so", "nope", "not", "salta la domanda", "sì", "mario@example.it"])
def test_is_skip_false(text: str) -> None:
    assert rules.replies.is_skip(text) is False


def test_answer_over_bcrypt_bytes_is_rejected_before_hashing():
    with pytest.raises(Invalid) as bad:
        rules.answer.validate("🐈" * 19, "Qual è il mio animale preferito?")
    assert bad.value.reason == "answer.too_many_bytes"
    assert rules.answer.validate("🐈" * 18, "Qual è il mio animale preferito?") == "🐈" * 18


# --- the examples the messages show ------------------------------------------------------------------------


def _catalogue() -> str:
    from unogas_bot.i18n import texts

    return "\n".join(str(text) for catalogue in texts.load().values() for text in catalogue.values())


def test_every_tax_code_the_messages_show_as_an_example_is_valid() -> None:
    catalogue = _catalogue()
    personal = set(re.findall(r"\b[A-Z]{6}[0-9]{2}[A-Z][0-9]{2}[A-Z][0-9]{3}[A-Z]\b", catalogue))
    vat = set(re.findall(r"\b[0-9]{11}\b", catalogue))
    assert personal and vat
    for code in personal:
        assert rules.tax_code.validate(code, "person") == code
    for code in vat:
        assert (
            rules.tax_code.validate(code, "business") == code
        )  # a customer who copies the example is not refused


def test_the_example_passwords_the_messages_show_are_refused() -> None:
    # The quoted examples with digits, in Italian «» and English “” quotes.
    shown = set(re.findall(r"[«“]([^»”]*\d[^»”]*)[»”]", _catalogue()))
    assert shown and shown <= set(rules.password.PUBLISHED_PASSWORDS)
    for example in shown:
        assert reason_of(rules.password.validate, example) == "password.common"
        assert reason_of(rules.password.validate, example.upper().replace(" ", "")) == "password.common"


async def test_a_lone_surrogate_neither_matches_nor_crashes_the_hasher() -> None:
    from unogas_bot.security.hashing import EphemeralMac, Hasher

    hasher, mac = Hasher(rounds=4), EphemeralMac()
    try:
        stored = await hasher.hash("Girasoli sul balcone 77")
        assert not await hasher.verify("Girasoli\ud800", stored)
        assert not mac.matches("Girasoli\ud800", mac.digest("Girasoli"))
    finally:
        hasher.close()


def test_is_valid_says_what_validate_decides() -> None:
    assert rules.customer_code.is_valid("UG-100234") and not rules.customer_code.is_valid("UG")
    assert rules.email.is_valid("mario@example.it") and not rules.email.is_valid("mario")
    assert rules.phone.is_valid("347 123 4567") and not rules.phone.is_valid("12")
    assert rules.tax_code.is_valid("RSSMRA75C12H501H", "person")
    assert not rules.tax_code.is_valid("01234560017", "person")
