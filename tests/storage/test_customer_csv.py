"""The customer CSV: checking, error reporting with editor line numbers, all-or-nothing imports."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

from storage.customer_csv import (
    HEADER,
    MAX_LISTED_ERRORS,
    ImportRejected,
    ImportResult,
    RowError,
    import_file,
    iter_rows,
    validate_row,
)
from storage.demo import DEMO_CUSTOMERS
from storage.registry import CustomerRegistry, RegistryImport
from unogas_bot.cli.main import main as cli_main
from unogas_bot.domain import CustomerRecord

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


def row(**values: str) -> list[str]:
    """A CSV row's fields, empty where not given."""
    return [values.get(name, "") for name in HEADER]


async def rejection(path: Path, registry: CustomerRegistry) -> list[tuple[int, str]]:
    """The errors an import of `path` is rejected with; the registry must be as it was."""
    before = await registry.count()
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    assert await registry.count() == before
    return caught.value.errors


# --- reading and checking rows ---------------------------------------------------------------------------


def test_good_file_normalises_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    records = [validate_row(fields) for _, fields in iter_rows(path)]
    assert len(records) == 6
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
    assert numbered[1][1][HEADER.index("company_name")] == "Rossi, Bianchi\r\n& C. S.n.c."


async def test_bom_is_accepted(registry: CustomerRegistry, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert await import_file(path, registry) == ImportResult(6, 6, 0)
    assert await registry.get("UG-100234") == DEMO_CUSTOMERS[0]


@pytest.mark.parametrize(
    "header",
    [
        "code,kind,first_name,last_name,company_name,tax_code",
        "customer_code,kind,first_name,last_name,tax_code",
        "customer_code\tkind\tfirst_name\tlast_name\tcompany_name\ttax_code",
        "customer_code;kind;first_name;last_name;tax_code",
        "kind,customer_code,first_name,last_name,company_name,tax_code",
        "UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H",
    ],
)
async def test_wrong_header_is_an_error_at_line_1(
    registry: CustomerRegistry, tmp_path: Path, header: str
) -> None:
    path = write(tmp_path, f"{header}\nUG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\n")
    errors = await rejection(path, registry)
    assert len(errors) == 1 and errors[0][0] == 1 and "header" in errors[0][1]


async def test_empty_file(registry: CustomerRegistry, tmp_path: Path) -> None:
    assert await rejection(write(tmp_path, ""), registry) == [
        (1, "the file is empty: expected the header " + HEADER_LINE)
    ]


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


async def test_every_bad_row_is_reported_with_line_and_reason(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    errors = await rejection(write(tmp_path, BAD), registry)
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


async def test_bad_bytes_are_reported_on_their_line(registry: CustomerRegistry, tmp_path: Path) -> None:
    data = (f"{HEADER_LINE}\nUG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\n").encode() + (
        "UG-100236,person,Nicolò,D'Angelo,,DNGNCL69S05F839F\n".encode("latin-1")
    )
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    ((line, reason),) = await rejection(path, registry)
    assert line == 3 and reason.startswith("the line is not valid UTF-8 (it looks like Windows-1252/Latin-1)")


async def test_a_file_level_error_comes_after_the_rows_before_it(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    text = (
        f"{HEADER_LINE}\nUG-1,client,Mario,Rossi,,RSSMRA75C12H501H\n"
        'UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H\nUG-1,business,,,"Bar "Sport",x\n'
    )
    errors = await rejection(write(tmp_path, text), registry)
    assert errors[0] == (2, "kind must be person or business")
    assert errors[1][0] == 4 and errors[1][1].startswith("malformed CSV")
    assert len(errors) == 2


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


async def test_a_rejected_import_leaves_nothing_behind(registry: CustomerRegistry, tmp_path: Path) -> None:
    """Rows staged batch by batch before the bad ones are gone, and the next import starts clean."""
    with pytest.raises(ImportRejected):
        await import_file(write(tmp_path, BAD), registry, batch_size=1)
    assert await registry.count() == 0
    assert await import_file(write(tmp_path, GOOD, "good.csv"), registry, batch_size=4) == ImportResult(
        6, 6, 0
    )
    assert await registry.count() == 6


async def test_a_failure_after_the_merge_rolls_everything_back(
    registry: CustomerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge and the staging share one transaction: an error after the merge undoes both."""
    merge = RegistryImport.merge

    async def merge_then_fail(self: RegistryImport) -> tuple[int, int]:
        assert await merge(self) == (6, 0)
        raise OSError("disk full")

    monkeypatch.setattr(RegistryImport, "merge", merge_then_fail)
    with pytest.raises(OSError, match="disk full"):
        await import_file(write(tmp_path, GOOD), registry)
    assert await registry.count() == 0
    monkeypatch.undo()
    assert await import_file(write(tmp_path, GOOD), registry) == ImportResult(6, 6, 0)


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        asyncio.run(import_file(write(tmp_path, GOOD), None, batch_size=0))  # type: ignore[arg-type]


async def test_larger_file(registry: CustomerRegistry, tmp_path: Path) -> None:
    lines = [HEADER_LINE] + [f"UG-{n:07d},person,Mario,Rossi,,RSSMRA75C12H501H" for n in range(12_000)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert await import_file(path, registry) == ImportResult(12_000, 12_000, 0)
    assert await registry.count() == 12_000


# --- a file wrong throughout ------------------------------------------------------------------------------


def _wrong_throughout(tmp_path: Path) -> Path:
    """1,500 rows with a bad tax code, then 1,200 repeats of good rows, then broken quoting."""
    good = "UG-{n:06d},person,Mario,Rossi,,RSSMRA75C12H501H\n"
    bad = "UG-{n:06d},person,Mario,Rossi,,RSSMRA75C12H501X\n"
    lines = [bad.format(n=n) for n in range(1500)]
    lines += [good.format(n=900_000 + n % 600) for n in range(1800)]  # 600 codes, each three times
    lines.append('UG-1,business,,,"Bar "Sport",x\n')
    return write(tmp_path, HEADER_LINE + "\n" + "".join(lines))


async def test_a_file_wrong_throughout_lists_the_first_errors_and_counts_the_rest(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    with pytest.raises(ImportRejected) as caught:
        await import_file(_wrong_throughout(tmp_path), registry, batch_size=700)
    rejected = caught.value
    assert rejected.total == 1500 + 1200 + 1
    listed, (format_line, format_reason) = rejected.errors[:-1], rejected.errors[-1]
    assert len(listed) == MAX_LISTED_ERRORS
    assert listed[:2] == [(2, "tax code: bad_checksum"), (3, "tax code: bad_checksum")]
    assert [line for line, _ in listed] == list(range(2, 2 + MAX_LISTED_ERRORS))  # the first, in order
    assert format_line == 1 + 1500 + 1800 + 1 and format_reason.startswith("malformed CSV")
    assert await registry.count() == 0


async def test_a_file_wrong_throughout_lists_its_repeats_too(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    good = "UG-{n:06d},person,Mario,Rossi,,RSSMRA75C12H501H\n"
    lines = [good.format(n=n % 700) for n in range(2100)]  # 700 codes, each three times
    path = write(tmp_path, HEADER_LINE + "\n" + "".join(lines))
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    rejected = caught.value
    assert rejected.total == 1400
    assert len(rejected.errors) == MAX_LISTED_ERRORS
    assert rejected.errors[0] == (702, "duplicate customer code UG-000000 (first on line 2)")
    assert rejected.errors[-1] == (1701, "duplicate customer code UG-000299 (first on line 301)")


def test_the_command_lists_the_first_errors_and_says_how_many_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert cli_main(["customers", "import", str(_wrong_throughout(tmp_path))]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "rows read" not in line]  # no progress
    assert err[0] == "line 2: the check character of the codice fiscale is wrong"  # a sentence, not a code
    assert f"... and {2701 - MAX_LISTED_ERRORS - 1} more" in err
    assert "2701 error(s)" in err[-1] and "nothing imported" in err[-1]
