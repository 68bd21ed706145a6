"""Customer codes compared in one canonical form (issue 13): "UG100234" and "UG 100 234" are "UG-100234".

The registry keeps the code as printed on the bill and, in ``customers.code_key``, the key every comparison
uses (``domain.customer_code_key``); these tests go through each place a code is compared: the import, the
registry's identity check, the accounts, the limits and recovery.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.customer_csv import HEADER, ImportRejected, import_file
from storage.demo import DEMO_CUSTOMERS
from storage.registry import CustomerRegistry
from tests.kit.accountkit import MARIO_EMAIL, registered, start_recovery
from tests.kit.botkit import MARIO, Bot, last_text
from tests.kit.stores import stores
from unogas_bot import rules
from unogas_bot.domain import CustomerRecord, customer_code_key
from unogas_bot.service import limits


@pytest.mark.parametrize("typed", ["UG-100234", "UG100234", "ug 100 234", "UG/100-234", " ug-100234 "])
def test_every_spelling_of_a_code_has_the_same_key(typed: str) -> None:
    assert customer_code_key(rules.customer_code.validate(typed)) == "UG100234"
    assert limits.customer_key(typed) == limits.customer_key("UG-100234")


def test_the_key_of_any_text_is_letters_and_digits() -> None:
    assert customer_code_key("àb-1 2/3\t") == "B123"


def test_the_key_keeps_the_ascii_letters_and_digits_of_the_upper_cased_text_for_every_character() -> None:
    # Upper-casing may turn a non-ASCII character into ASCII letters ("ß" -> "SS", "ı" -> "I"): the key keeps
    # them, as the definition says. Checked against the definition character by character.
    every = "".join(chr(point) for point in range(0x3_0000) if not 0xD800 <= point < 0xE000)
    expected = "".join(ch for ch in every.upper() if ch.isascii() and ch.isalnum())
    assert customer_code_key(every) == expected
    assert customer_code_key("ßıſ-1") == "SSIS1"


async def test_the_identity_check_finds_a_code_typed_without_its_hyphen(registry: CustomerRegistry) -> None:
    await registry.upsert_many(DEMO_CUSTOMERS)
    mario = DEMO_CUSTOMERS[0]
    for typed in ("UG100234", "UG 100 234"):
        identity = CustomerRecord(
            rules.customer_code.validate(typed), "person", "Mario", "Rossi", None, mario.tax_code
        )
        record = await registry.match(identity)
        assert record is not None and record.customer_code == "UG-100234"  # shown as printed
    assert (await registry.get("ug100234")) == mario


async def test_an_import_finds_the_stored_customer_by_key_and_refuses_two_spellings(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    await registry.upsert_many(DEMO_CUSTOMERS[:1])
    path = tmp_path / "customers.csv"
    path.write_text(f"{','.join(HEADER)}\nUG100234,person,Mario,Rossi,,RSSMRA75C12H501H\n", encoding="utf-8")
    # The same key, printed differently: refused unless it is a deliberate correction (issue 21).
    with pytest.raises(ImportRejected):
        await import_file(path, registry)
    result = await import_file(path, registry, corrections=True)
    assert (result.inserted, result.updated) == (
        0,
        1,
    )  # the same customer, its code now spelled as in the file
    assert await registry.count() == 1
    path.write_text(
        f"{','.join(HEADER)}\nUG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\n"
        "ug 100/234,person,Mario,Rossi,,RSSMRA75C12H501H\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    assert caught.value.errors == [
        (
            2,
            "customer code UG-100234 is UG100234 in the registry, printed differently; "
            "if it is a correction, import with --correct",
        ),
        (3, "duplicate customer code UG100/234 (first on line 2)"),
    ]


async def test_accounts_are_found_by_any_spelling_and_recovery_accepts_it(sqlite_bot: Bot) -> None:
    owner = await registered(sqlite_bot)
    account = await stores(sqlite_bot.services).accounts.get_by_customer_code("ug100234")
    assert account is not None and account.email == MARIO_EMAIL and account.customer_code == MARIO["code"]
    events = await start_recovery(owner, code="UG 100234")
    assert "Passo 3 di 5" in last_text(events)
