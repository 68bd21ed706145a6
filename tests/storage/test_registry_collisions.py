"""The registry never merges two customers (issue 21, item 4).

A row whose code's key is a registry customer's with another printed code ("UG1-00234" against
"UG-100234") or another holder (another tax code) is refused with its line and reason, and the import
stays all-or-nothing; `--correct` applies it as a deliberate correction, audited with the operator.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, text

from storage.customer_csv import HEADER, ImportRejected, import_file
from storage.db import Database
from storage.demo import DEMO_CUSTOMERS
from storage.models import AuditEvent
from storage.operator import acting_operator
from storage.registry import IMPORT_LOCK, CustomerRegistry, StagedRow, name_key
from unogas_bot.cli.main import main as cli_main

MARIO, GIULIA = DEMO_CUSTOMERS[0], DEMO_CUSTOMERS[1]
HEAD = ",".join(HEADER)
NEW_ROW = "UG-300001,person,Anna,Verdi,,VRDNNA90A41F205M"


def csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text("\n".join([HEAD, *rows]) + "\n", encoding="utf-8")
    return path


async def rejected(path: Path, registry: CustomerRegistry) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as caught:
        await import_file(path, registry)
    return caught.value.errors


@pytest.fixture
async def registry(database: Database) -> CustomerRegistry:
    registry = CustomerRegistry(database)
    await registry.upsert_many(DEMO_CUSTOMERS)
    return registry


async def test_another_person_under_a_code_printed_differently_is_refused(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    # Giulia's record under "UG1-00234": the key of Mario's "UG-100234".
    path = csv(tmp_path, NEW_ROW, f"UG1-00234,person,Giulia,Bianchi,,{GIULIA.tax_code}")
    errors = await rejected(path, registry)
    assert len(errors) == 1 and errors[0][0] == 3
    assert "UG1-00234" in errors[0][1] and "UG-100234" in errors[0][1]
    assert await registry.get(MARIO.customer_code) == MARIO  # untouched
    assert await registry.get("UG-300001") is None  # all or nothing: the good row is not imported either


async def test_another_holder_under_the_same_code_is_refused(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    path = csv(tmp_path, f"UG-100234,person,Giulia,Bianchi,,{GIULIA.tax_code}")
    (error,) = await rejected(path, registry)
    assert error[0] == 2 and "another holder" in error[1]
    assert await registry.get(MARIO.customer_code) == MARIO


async def test_the_same_customer_spelled_differently_is_refused_too(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    path = csv(tmp_path, f"UG100234,person,Mario,Rossi,,{MARIO.tax_code}")
    (error,) = await rejected(path, registry)
    assert error[0] == 2 and "printed differently" in error[1]


async def test_a_corrected_name_of_the_same_holder_is_an_ordinary_update(
    registry: CustomerRegistry, tmp_path: Path
) -> None:
    path = csv(tmp_path, f"UG-100234,person,Mario Luigi,Rossi,,{MARIO.tax_code}")
    result = await import_file(path, registry)
    assert (result.inserted, result.updated) == (0, 1)


async def test_a_deliberate_correction_is_applied_and_audited_with_the_operator(
    registry: CustomerRegistry, database: Database, tmp_path: Path
) -> None:
    path = csv(tmp_path, NEW_ROW, f"UG1-00234,person,Mario,Rossi,,{MARIO.tax_code}")
    with acting_operator("anna"):
        result = await import_file(path, registry, corrections=True)
    assert (result.inserted, result.updated) == (1, 1)
    assert (await registry.get("UG-100234")).customer_code == "UG1-00234"  # type: ignore[union-attr]
    async with database.session() as session:
        rows = (
            await session.execute(
                select(AuditEvent.customer_code, AuditEvent.detail).where(
                    AuditEvent.event == "registry_corrected"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("UG1-00234", "import line 3: printed code UG-100234 -> UG1-00234; operator anna")
    ]


def test_the_command_refuses_with_the_line_and_applies_only_with_correct_and_an_operator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.delenv("UNOGAS_OPERATOR", raising=False)
    assert cli_main(["customers", "demo"]) == 0
    path = csv(tmp_path, f"UG1-00234,person,Giulia,Bianchi,,{GIULIA.tax_code}")
    capsys.readouterr()
    assert cli_main(["customers", "import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 2: customer code UG1-00234 is UG-100234 in the registry" in err and "nothing imported" in err
    assert cli_main(["customers", "import", "--correct", str(path)]) == 1
    assert "--operator" in capsys.readouterr().err
    assert cli_main(["customers", "import", "--correct", "--operator", "anna", str(path)]) == 0
    assert "1 updated" in capsys.readouterr().out


async def test_two_imports_at_once_never_merge_two_customers(tmp_path: Path) -> None:
    """Two imports running at once (PostgreSQL: two support staff, two processes), each with one of two
    people whose printed codes differ only by separators: each checks its rows against the registry as it
    was when it began, and neither sees the other's. Before, both passed the check and the second merge
    overwrote the first person's record with the second's. The imports run one after the other, so the
    second sees the first's row and is refused. (SQLite's one write lock already serialises them.)"""
    from tests.conftest import make_test_database

    async with make_test_database("postgres", tmp_path) as db:
        registry = CustomerRegistry(db)
        anna = "UG-300001,person,Anna,Verdi,,VRDNNA90A41F205M"
        other = csv(tmp_path, f"UG3-00001,person,Giulia,Bianchi,,{GIULIA.tax_code}")
        async with registry.importing() as first:
            await first.add([_staged(2, anna)])
            assert await first.collisions(None) == ([], 0)
            second = asyncio.create_task(import_file(other, registry))
            await _done_or_waiting_on_a_lock(db, second)
            await first.merge()
        with pytest.raises(ImportRejected) as caught:
            await second
        (error,) = caught.value.errors
        assert error[0] == 2 and "UG3-00001" in error[1]
        record = await registry.get("UG-300001")
        assert record is not None and record.first_name == "Anna", "the first person's record stands"


def _staged(line: int, row: str) -> StagedRow:
    code, kind, first, last, company, tax = row.split(",")
    return (
        line,
        code,
        code.replace("-", ""),
        kind,
        first,
        last,
        company or None,
        tax,
        name_key(kind, first, last, None),
    )


# Sessions waiting for the imports' advisory lock (a bigint key shows as classid and objid in pg_locks).
WAITING = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:key, 0)"
)


async def _done_or_waiting_on_a_lock(db: Database, task: asyncio.Task[object]) -> None:
    """Wait, with a deadline, until `task` has finished or waits for the imports' lock."""
    for _ in range(500):
        if task.done():
            return
        async with db.session() as session:
            waiting = await session.scalar(WAITING, {"key": IMPORT_LOCK})
        if waiting:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the second import neither finished nor waited")
