"""Customer CSVs as spreadsheet programs write them, and two imports at once (issue 22, item 6: found by
the attacks on `customers import`): a UTF-16 file gets the way to convert it, not Windows-1252's; a line
split by the other separator says so; Excel's trailing empty columns are no error; the counts of two
imports of the same codes at once are the truth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.customer_csv import HEADER, ImportRejected, import_file, staged_row
from storage.db import Database
from storage.registry import CustomerRegistry

HEADER_LINE = ",".join(HEADER)
ROWS = ["UG-100234,person,Mario,Rossi,,RSSMRA75C12H501H", "UG-200101,business,,,Bar Sport,IT02847390586"]


async def _rejected(path: Path, registry: CustomerRegistry) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    assert await registry.count() == 0
    return caught.value.errors


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le"])
async def test_a_utf16_file_is_told_how_to_convert_it(
    registry: CustomerRegistry, tmp_path: Path, encoding: str
) -> None:
    """LibreOffice's "Unicode" CSV and Excel's "Unicode text": the advice to convert from Windows-1252
    would garble every line."""
    path = tmp_path / "utf16.csv"
    path.write_bytes("\n".join([HEADER_LINE, *ROWS]).encode(encoding))
    ((line, reason),) = await _rejected(path, registry)
    assert line == 1 and "UTF-16" in reason and "iconv -f UTF-16 -t UTF-8" in reason, reason
    assert "1252" not in reason


async def test_a_line_split_by_the_other_separator_says_so(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join([HEADER_LINE.replace(",", ";"), *ROWS]) + "\n", encoding="utf-8")
    errors = await _rejected(path, registry)
    assert errors == [
        (n, "too few fields: expected 6 separated by ';' as in the header, but the line uses ','")
        for n in (2, 3)
    ]


async def test_excels_trailing_empty_columns_are_no_error(registry: CustomerRegistry, tmp_path: Path) -> None:
    """A sheet with formatted cells right of the data exports `;;` at the end of every line."""
    path = tmp_path / "excel.csv"
    lines = [HEADER_LINE.replace(",", ";") + ";;", *(row.replace(",", ";") + ";;" for row in ROWS)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    result = await import_file(path, registry)
    assert (result.rows, result.inserted) == (2, 2)
    # An extra column that holds something is still refused: it may be a shifted one.
    path.write_text(f"{HEADER_LINE},\n{ROWS[0]},x\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    assert caught.value.errors == [(2, "too many fields: expected 6")]


async def test_two_imports_of_the_same_codes_at_once_count_what_each_wrote(
    database: Database, registry: CustomerRegistry
) -> None:
    """The second import waits for the first (one import at a time on PostgreSQL, so two never merge two
    customers; where it would wait on the first's rows instead, its merge counts from its own statement),
    then inserts nothing. It said "2 added, -2 updated"."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE): the second import starts after")
    rows = [staged_row(n, line.split(",")) for n, line in enumerate(ROWS, 2)]

    async def second() -> tuple[int, int]:
        async with CustomerRegistry(database).importing() as job:
            await job.add(rows)
            return await job.merge()

    async def blocked() -> bool:
        async with database.transaction() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' "
                    "AND (query ILIKE '%INSERT INTO customers%' OR query ILIKE '%pg_advisory_xact_lock%')"
                )
            )
        return bool(waiting)

    async with registry.importing() as first:
        await first.add(rows)
        assert await first.merge() == (2, 0)
        task = asyncio.ensure_future(second())
        deadline = asyncio.get_running_loop().time() + 20
        while not await blocked():  # the second waits for the first
            assert not task.done(), task.result()
            assert asyncio.get_running_loop().time() < deadline, "the second import never waited"
            await asyncio.sleep(0.05)
    assert await task == (0, 0)
    assert await registry.count() == 2
