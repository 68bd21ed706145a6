"""`customers import` at scale: all or nothing for large files, and memory that does not grow with the file.

The memory test imports 100,000 and 1,000,000 rows in separate `unogas-bot` processes (about 20 s; marked
`slow`, so `-m "not slow"` leaves it out of a quick run). The CSVs come from the benchmark's generator
(unogas_bot/bench/data.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.customer_csv import ImportRejected, ImportResult, import_file
from storage.db import Database
from storage.registry import CustomerRegistry
from unogas_bot.bench.data import write_csv

ROWS = 20_000
BAD_ROW = "UG-9999999,person,Mario,Rossi,,RSSMRA75C12H501X\n"  # the tax code's check character is wrong


def _large_file(tmp_path: Path, last: str) -> Path:
    path = write_csv(tmp_path / "customers.csv", ROWS)
    with path.open("a", encoding="utf-8") as out:
        out.write(last)
    return path


async def test_a_bad_row_at_the_end_of_a_large_file_imports_nothing(
    database: Database, tmp_path: Path
) -> None:
    registry = CustomerRegistry(database)
    path = _large_file(tmp_path, BAD_ROW)
    with pytest.raises(ImportRejected) as rejected:
        await import_file(path, registry)
    assert rejected.value.errors == [(ROWS + 2, "tax code: bad_checksum")]
    assert await registry.count() == 0


async def test_a_duplicate_at_the_end_of_a_large_file_imports_nothing(
    database: Database, tmp_path: Path
) -> None:
    registry = CustomerRegistry(database)
    first = write_csv(tmp_path / "one.csv", 1).read_text(encoding="utf-8").splitlines()[1]
    path = _large_file(tmp_path, first + "\n")  # the first data row (line 2) once more
    with pytest.raises(ImportRejected) as rejected:
        await import_file(path, registry)
    (error,) = rejected.value.errors
    assert error[0] == ROWS + 2 and "duplicate" in error[1] and "line 2" in error[1]
    assert await registry.count() == 0


async def test_reimporting_a_large_file_updates_only_the_changed_rows(
    database: Database, tmp_path: Path
) -> None:
    registry = CustomerRegistry(database)
    path = write_csv(tmp_path / "customers.csv", ROWS)
    assert await import_file(path, registry, batch_size=1000) == ImportResult(ROWS, ROWS, 0)
    assert await import_file(path, registry) == ImportResult(ROWS, 0, 0)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    renamed = {5: "Rossi", 9_000: "Bianchi"}  # data lines; the tax code stays valid with any surname
    for index, surname in renamed.items():
        fields = lines[index].split(",")
        if fields[1] == "business":
            fields[4] = f"Impresa {surname} S.r.l."
        else:
            fields[3] = surname + "x" if fields[3] == surname else surname
        lines[index] = ",".join(fields)
    lines.append("UG-9999998,person,Anna,Verdi,,VRDNNA90A41F205M\n")
    path.write_text("".join(lines), encoding="utf-8")
    assert await import_file(path, registry) == ImportResult(ROWS + 1, 1, 2)
    assert await registry.count() == ROWS + 1


def _import_measured(csv: Path, db: Path) -> tuple[float, str]:
    """Import `csv` with the real command in a child process; the child's peak RSS (MB) and its output."""
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    child = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "customers", "import", str(csv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the maximum over all children
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, out
    return usage.ru_maxrss / 1024, out


@pytest.mark.slow
def test_importing_ten_times_more_rows_needs_no_more_memory(tmp_path: Path) -> None:
    peaks = {}
    for rows in (100_000, 1_000_000):
        csv = write_csv(tmp_path / f"{rows}.csv", rows)
        peaks[rows], out = _import_measured(csv, tmp_path / f"{rows}.db")
        assert f"{rows} rows read: {rows} customers added" in out
        csv.unlink()
    assert peaks[1_000_000] <= 1.25 * peaks[100_000], peaks
