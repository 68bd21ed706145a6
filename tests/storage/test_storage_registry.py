"""CustomerRegistry: bulk upserts and identity matching, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from storage.models import Customer
from storage.registry import CustomerRegistry
from unogas_bot import rules
from unogas_bot.domain import CustomerRecord

MARIO = DEMO_CUSTOMERS[0]  # UG-100234 Mario Rossi
NICOLO = DEMO_CUSTOMERS[2]  # UG-100236 Nicolò D'Angelo
SRL = DEMO_CUSTOMERS[4]  # UG-200101 Idrotermica Ferraro S.r.l.
SOLE_TRADER = DEMO_CUSTOMERS[5]  # UG-200102 Bar Sport di Luca Esposito


def typed(
    code: str,
    kind: str,
    tax_code: str,
    *,
    first: str | None = None,
    last: str | None = None,
    company: str | None = None,
) -> CustomerRecord:
    """An CustomerRecord as the conversation builds it: every reply normalised by validation."""
    return CustomerRecord(
        customer_code=rules.customer_code.validate(code),
        kind=kind,
        first_name=rules.names.person_name(first) if first is not None else None,
        last_name=rules.names.person_name(last) if last is not None else None,
        company_name=rules.names.company_name(company) if company is not None else None,
        tax_code=rules.tax_code.validate(tax_code, kind),
    )


def identity_of(record: CustomerRecord) -> CustomerRecord:
    return CustomerRecord(**dataclasses.asdict(record))


def person(code: str, first: str, last: str, tax: str = "RSSMRA75C12H501H") -> CustomerRecord:
    return CustomerRecord(code, "person", first, last, None, tax)


@pytest.fixture
async def demo(registry: CustomerRegistry) -> list[CustomerRecord]:
    return await load_demo(registry)


# --- demo data -------------------------------------------------------------------------------------------


def test_demo_customers_are_valid_and_varied() -> None:
    kinds = [record.kind for record in DEMO_CUSTOMERS]
    assert 5 <= len(DEMO_CUSTOMERS) <= 6
    assert kinds.count("person") >= 3 and kinds.count("business") >= 2
    assert len({record.customer_code for record in DEMO_CUSTOMERS}) == len(DEMO_CUSTOMERS)
    for record in DEMO_CUSTOMERS:
        # Stored exactly as validation normalises them, so typed input can match.
        assert rules.customer_code.validate(record.customer_code) == record.customer_code
        assert rules.tax_code.validate(record.tax_code, record.kind) == record.tax_code
        if record.kind == "person":
            assert rules.names.person_name(record.first_name or "") == record.first_name
            assert rules.names.person_name(record.last_name or "") == record.last_name
            assert record.company_name is None
        else:
            assert rules.names.company_name(record.company_name or "") == record.company_name
            assert record.first_name is None and record.last_name is None
    businesses = [record for record in DEMO_CUSTOMERS if record.kind == "business"]
    assert any("S.r.l." in (r.company_name or "") and len(r.tax_code) == 11 for r in businesses)
    assert any(len(r.tax_code) == 16 for r in businesses)  # a sole trader with a codice fiscale
    names = " ".join(f"{r.first_name} {r.last_name}" for r in DEMO_CUSTOMERS if r.kind == "person")
    assert "'" in names and "ò" in names


async def test_load_demo_is_idempotent(registry: CustomerRegistry) -> None:
    loaded = await load_demo(registry)
    assert loaded == list(DEMO_CUSTOMERS)
    assert await load_demo(registry) == loaded
    assert await registry.count() == len(DEMO_CUSTOMERS)
    for record in DEMO_CUSTOMERS:
        assert await registry.get(record.customer_code) == record


# --- upsert ----------------------------------------------------------------------------------------------


async def test_upsert_counts_inserted_updated_and_leaves_unchanged_rows_alone(
    registry: CustomerRegistry, database: Database, clock
) -> None:
    assert await registry.upsert_many(DEMO_CUSTOMERS) == (len(DEMO_CUSTOMERS), 0)
    first_stamp = clock()
    clock.advance(days=1)
    assert await registry.upsert_many(DEMO_CUSTOMERS) == (0, 0)

    renamed = dataclasses.replace(MARIO, first_name="Mariano")
    new = person("UG-999001", "Anna", "Verdi", "VRDNNA90A41F205M")
    assert await registry.upsert_many([renamed, new, *DEMO_CUSTOMERS[1:]]) == (1, 1)
    assert await registry.get(MARIO.customer_code) == renamed
    assert await registry.get("ug-999001") == new
    assert await registry.count() == len(DEMO_CUSTOMERS) + 1

    async with database.session() as session:
        rows = await session.execute(select(Customer.customer_code, Customer.updated_at))
        stamps = {code: stamp for code, stamp in rows}
        created = (
            await session.execute(
                select(Customer.created_at).where(Customer.customer_code == MARIO.customer_code)
            )
        ).scalar_one()
    assert stamps[MARIO.customer_code] == clock()  # changed today
    assert stamps[NICOLO.customer_code] == first_stamp  # untouched rows keep their timestamp
    assert created == first_stamp
    assert created.tzinfo is not None


async def test_upsert_can_change_kind(registry: CustomerRegistry) -> None:
    await registry.upsert_many([MARIO])
    company = CustomerRecord(
        MARIO.customer_code, "business", None, None, "Rossi Impianti S.p.A.", "02847390586"
    )
    assert await registry.upsert_many([company]) == (0, 1)
    assert await registry.get(MARIO.customer_code) == company


async def test_upsert_in_batches_with_duplicates_last_wins(registry: CustomerRegistry) -> None:
    records = [person(f"UG-{n:06d}", "Mario", "Rossi") for n in range(25)]
    later = person("UG-000003", "Marco", "Rossi")
    records.insert(10, later)  # same code again, in another batch
    records.append(person("UG-000024", "Luigi", "Rossi"))  # same code again, in the same batch
    # The repeat in a later batch updates the row its first occurrence inserted; inside a batch it is folded.
    assert await registry.upsert_many(records, batch_size=7) == (25, 1)
    assert (await registry.get("UG-000003")) == later
    assert (await registry.get("UG-000024")).first_name == "Luigi"  # type: ignore[union-attr]


async def test_upsert_is_one_transaction(registry: CustomerRegistry) -> None:
    def records() -> Iterator[CustomerRecord]:
        for n in range(20):
            yield person(f"UG-{n:06d}", "Mario", "Rossi")
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        await registry.upsert_many(records(), batch_size=5)
    assert await registry.count() == 0


async def test_upsert_bulk_import(registry: CustomerRegistry) -> None:
    records = [person(f"UG-{n:07d}", "Mario", "Rossi") for n in range(20_000)]
    assert await registry.upsert_many(records) == (20_000, 0)
    assert await registry.count() == 20_000
    changed = [dataclasses.replace(r, first_name="Maria") if i % 4 == 0 else r for i, r in enumerate(records)]
    assert await registry.upsert_many(changed) == (0, 5_000)


# --- match -----------------------------------------------------------------------------------------------


async def test_right_identity_matches(registry: CustomerRegistry, demo: list[CustomerRecord]) -> None:
    for record in demo:
        assert await registry.match(identity_of(record)) == record


@pytest.mark.parametrize(
    "change",
    [
        {"tax_code": "BNCGLI88L64F205B"},  # someone else's valid code
        {"first_name": "Marco"},
        {"last_name": "Rossini"},
        {"customer_code": "UG-100235"},  # another customer's code
        {"customer_code": "UG-999999"},  # unknown code
        {"kind": "business", "first_name": None, "last_name": None, "company_name": "Mario Rossi"},
    ],
    ids=["tax_code", "first_name", "last_name", "other_code", "unknown_code", "kind"],
)
async def test_wrong_identity_does_not_match(
    registry: CustomerRegistry, demo: list[CustomerRecord], change: dict
) -> None:
    assert await registry.match(dataclasses.replace(identity_of(MARIO), **change)) is None


async def test_incomplete_identity_does_not_match(
    registry: CustomerRegistry, demo: list[CustomerRecord]
) -> None:
    assert await registry.match(dataclasses.replace(identity_of(MARIO), first_name=None)) is None
    assert await registry.match(dataclasses.replace(identity_of(SRL), company_name=None)) is None
    assert await registry.match(dataclasses.replace(identity_of(MARIO), kind="alien")) is None


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("Nicolò", "D'Angelo"),
        ("NICOLÒ", "D’ANGELO"),  # capitals, typographic apostrophe
        ("nicolo", "d angelo"),  # no accent, space for apostrophe
        ("Nicolo'", "Dangelo"),  # the Italian keyboard-less spelling
        ("  Nicolò ", "D'  Angelo"),
    ],
)
async def test_person_names_match_regardless_of_case_accents_spaces(
    registry: CustomerRegistry, demo: list[CustomerRecord], first: str, last: str
) -> None:
    identity = typed("ug-100236", "person", "dngncl69s05f839f", first=first, last=last)
    assert await registry.match(identity) == NICOLO


@pytest.mark.parametrize(
    "company",
    [
        "Idrotermica Ferraro S.r.l.",
        "IDROTERMICA FERRARO SRL",
        "idrotermica ferraro s.r.l",
        "Idrotermica Ferraro Srl",
    ],
)
async def test_company_names_match_regardless_of_legal_form_spelling(
    registry: CustomerRegistry, demo: list[CustomerRecord], company: str
) -> None:
    identity = typed("UG-200101", "business", "IT 02847390586", company=company)
    assert await registry.match(identity) == SRL


async def test_company_with_different_name_does_not_match(
    registry: CustomerRegistry, demo: list[CustomerRecord]
) -> None:
    identity = typed("UG-200101", "business", "02847390586", company="Termoidraulica Ferraro S.r.l.")
    assert await registry.match(identity) is None


async def test_sole_trader_matches_with_codice_fiscale(
    registry: CustomerRegistry, demo: list[CustomerRecord]
) -> None:
    identity = typed("UG-200102", "business", "SPSLCU80A30L219H", company="bar sport di luca esposito")
    assert await registry.match(identity) == SOLE_TRADER


async def test_match_is_one_lookup(registry: CustomerRegistry, database: Database) -> None:
    await registry.upsert_many(person(f"UG-{n:06d}", "Mario", "Rossi") for n in range(300))
    statements: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", remember)
    try:
        assert await registry.match(identity_of(person("UG-000150", "Mario", "Rossi"))) is not None
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", remember)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "code_key =" in selects[0]


async def test_get_and_count(registry: CustomerRegistry, demo: list[CustomerRecord]) -> None:
    assert await registry.count() == len(demo)
    assert await registry.get("UG-100234") == MARIO
    assert await registry.get(" ug-100234 ") == MARIO
    assert await registry.get("UG-000000") is None
