"""The customer CSV: checking, error reporting with editor line numbers, all-or-nothing imports."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from storage import customer_csv
from storage.customer_csv import (
    HEADER,
    ImportRejected,
    ImportResult,
    RowError,
    check_file,
    import_file,
    iter_rows,
    validate_row,
)
from storage.demo import DEMO_CUSTOMERS
from storage.registry import CustomerRecord, CustomerRegistry

HEADER_LINE = ",".join(HEADER)

GOOD = f"""{HEADER_LINE}
UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H
ug-100235,Person,  giulia ,BIANCHI,,bncgli88l64f205b
UG-100236,person,Nicolò,D’Angelo,,DNG NCL 69S05 F839F
UG-100237,person,Chiara,Lombardo,,LMBCHR92E51A944T
UG-200101,business,,,"Idrotermica Ferraro S.r.l.",IT02847390586
UG-200102,business,,,Bar Sport di Luca Esposito,SPSLCU80A30L219H
"""


def write(tmp_path: Path, text: str, name: str = "customers.csv", *, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def row(**values: str) -> dict[str | None, str | list[str] | None]:
    base: dict[str | None, str | list[str] | None] = dict.fromkeys(HEADER, "")
    base.update(values)
    return base


# --- reading and checking (no database) ------------------------------------------------------------------


def test_good_file_normalises_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert check_file(path) == (6, [])
    records = [validate_row(r) for _, r in iter_rows(path)]
    assert [r.customer_code for r in records] == [r.customer_code for r in DEMO_CUSTOMERS]
    assert records[1] == CustomerRecord("UG-100235", "person", "giulia", "BIANCHI", None, "BNCGLI88L64F205B")
    assert records[2] == CustomerRecord("UG-100236", "person", "Nicolò", "D'Angelo", None, "DNGNCL69S05F839F")
    assert records[4] == DEMO_CUSTOMERS[4]


def test_iter_rows_streams_with_editor_line_numbers(tmp_path: Path) -> None:
    text = (
        f"{HEADER_LINE}\r\n"
        "UG-1001,person,Mario,Rossi,,RSSMRA75C12H501H\r\n"
        "\r\n"
        'UG-1002,business,,,"Rossi, Bianchi\r\n& C. S.n.c.",02847390586\r\n'
        "UG-1003,person,Mario,Rossi,,RSSMRA75C12H501H\r\n"
    )
    rows = iter_rows(write(tmp_path, text))
    assert inspect.isgenerator(rows)
    numbered = list(rows)
    assert [line for line, _ in numbered] == [2, 4, 6]  # blank line 3 skipped; record 4 spans two lines
    assert numbered[1][1]["company_name"] == "Rossi, Bianchi\r\n& C. S.n.c."


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert check_file(path) == (6, [])


@pytest.mark.parametrize(
    "header",
    [
        "code,kind,first_name,last_name,company_name,tax_code",
        "customer_code,kind,first_name,last_name,tax_code",
        "customer_code;kind;first_name;last_name;company_name;tax_code",
        "kind,customer_code,first_name,last_name,company_name,tax_code",
        "UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H",
    ],
)
def test_wrong_header_is_an_error_at_line_1(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, f"{header}\nUG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\n")
    rows, errors = check_file(path)
    assert rows == 0
    assert len(errors) == 1 and errors[0][0] == 1 and "header" in errors[0][1]


def test_empty_file(tmp_path: Path) -> None:
    assert check_file(write(tmp_path, "")) == (
        0,
        [(1, "the file is empty: expected the header " + HEADER_LINE)],
    )


BAD = f"""{HEADER_LINE}
UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H
UG-100235,client,Giulia,Bianchi,,BNCGLI88L64F205B
UG-100236,person,Nicolò,D'Angelo,,DNGNCL69S05F839A
UG-100237,person,Chiara,,,LMBCHR92E51A944T
UG-200101,business,Mario,,Idrotermica Ferraro S.r.l.,02847390586
UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H
UG 1,person,Mario,Rossi,,RSSMRA75C12H501H
UG-200102,business,,,Bar Sport,SPSLCU80A30L219H,extra
UG-200103,business,,,Bar Sport
UG-200104,person,Mario,Rossi,,02847390586
UG-200105,person,Mario,R0ssi,,RSSMRA75C12H501H
UG-200106,business,,,Idrotermica Ferraro S.r.l.,02847390587
"""


def test_every_bad_row_is_reported_with_line_and_reason(tmp_path: Path) -> None:
    rows, errors = check_file(write(tmp_path, BAD))
    assert rows == 12
    assert errors == [
        (3, "kind must be person or business"),
        (4, "tax code: bad_checksum"),
        (5, "a person needs first_name and last_name"),
        (6, "a business needs company_name and no first/last name"),
        (7, "duplicate customer code UG-100234 (first on line 2)"),
        (8, "customer code: too_short"),
        (9, "too many fields: expected 6"),
        (10, "too few fields: expected 6"),
        (11, "tax code: vat_for_person"),
        (12, "last name: digits"),
        (13, "tax code: vat_bad_checksum"),
    ]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"customer_code": "", "kind": "person"}, "customer_code is missing"),
        ({"customer_code": "UG-1", "kind": ""}, "kind must be person or business"),
        (
            {
                "customer_code": "UG-1234",
                "kind": "person",
                "first_name": "A",
                "last_name": "B",
                "company_name": "C",
            },
            "a person must not have a company_name",
        ),
        (
            {"customer_code": "UG-1234", "kind": "person", "first_name": "Mario", "last_name": "Rossi"},
            "tax_code is missing",
        ),
        (
            {
                "customer_code": "UG-1234",
                "kind": "business",
                "company_name": "!!!",
                "tax_code": "02847390586",
            },
            "company name: bad_chars",
        ),
        ({"customer_code": "ABCD", "kind": "person"}, "customer code: no_digit"),
    ],
)
def test_validate_row_reasons(values: dict[str, str], reason: str) -> None:
    with pytest.raises(RowError) as caught:
        validate_row(row(**values))
    assert caught.value.reason == reason


def test_bad_bytes_are_reported_on_their_line(tmp_path: Path) -> None:
    data = (f"{HEADER_LINE}\nUG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\n").encode() + (
        "UG-100236,person,Nicolò,D'Angelo,,DNGNCL69S05F839F\n".encode("latin-1")
    )
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    assert check_file(path) == (1, [(3, "the line is not valid UTF-8")])


def test_broken_quoting_is_reported(tmp_path: Path) -> None:
    text = f'{HEADER_LINE}\nUG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\nUG-1,business,,,"Bar "Sport",x\n'
    rows, errors = check_file(write(tmp_path, text))
    assert rows == 1 and errors[0][0] == 3 and errors[0][1].startswith("malformed CSV")


# --- importing -------------------------------------------------------------------------------------------


async def test_good_file_imports_with_counts(registry: CustomerRegistry, tmp_path: Path) -> None:
    result = await import_file(write(tmp_path, GOOD), registry)
    assert result == ImportResult(rows=6, inserted=6, updated=0)
    assert await registry.count() == 6
    assert await registry.get("UG-100236") == DEMO_CUSTOMERS[2]


async def test_reimport_updates(registry: CustomerRegistry, tmp_path: Path) -> None:
    await import_file(write(tmp_path, GOOD), registry)
    changed = GOOD.replace("Lombardo", "Lombardi")  # same consonants L-M-B: the tax code stays valid
    changed += "UG-300001,person,Anna,Verdi,,VRDNNA90A41F205M\n"
    result = await import_file(write(tmp_path, changed, "second.csv"), registry)
    assert result == ImportResult(rows=7, inserted=1, updated=1)
    assert result.unchanged == 5
    assert (await registry.get("UG-100237")).last_name == "Lombardi"  # type: ignore[union-attr]
    assert await import_file(write(tmp_path, changed, "third.csv"), registry) == ImportResult(7, 0, 0)


async def test_bad_file_imports_nothing(registry: CustomerRegistry, tmp_path: Path) -> None:
    await registry.upsert_many(DEMO_CUSTOMERS[:1])
    with pytest.raises(ImportRejected) as caught:
        await import_file(write(tmp_path, BAD), registry)
    assert [line for line, _ in caught.value.errors] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert await registry.count() == 1  # only what was there before


async def test_duplicate_codes_reject_the_file(registry: CustomerRegistry, tmp_path: Path) -> None:
    text = GOOD + "ug-100235,person,Giulia,Bianchi,,BNCGLI88L64F205B\n"
    with pytest.raises(ImportRejected) as caught:
        await import_file(write(tmp_path, text), registry)
    assert caught.value.errors == [(8, "duplicate customer code UG-100235 (first on line 3)")]
    assert await registry.count() == 0


async def test_wrong_header_rejects_the_file(registry: CustomerRegistry, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("customer_code,", "code,", 1))
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    assert caught.value.errors[0][0] == 1
    assert await registry.count() == 0


async def test_file_changed_after_the_check_imports_nothing(
    registry: CustomerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad row met while importing (the file changed after check_file) rolls the whole import back."""
    path = write(tmp_path, BAD)
    monkeypatch.setattr(customer_csv, "check_file", lambda _path: (12, []))
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry, batch_size=1)  # row 2 is already sent when row 3 fails
    assert caught.value.errors == [(3, "kind must be person or business")]
    assert await registry.count() == 0


async def test_larger_file(registry: CustomerRegistry, tmp_path: Path) -> None:
    lines = [HEADER_LINE] + [f"UG-{n:07d},person,Mario,Rossi,,RSSMRA75C12H501H" for n in range(12_000)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert await import_file(path, registry) == ImportResult(12_000, 12_000, 0)
    assert await registry.count() == 12_000
