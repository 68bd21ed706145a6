"""The suite's own test databases (tests/conftest.py): each test gets an upgraded database that holds nothing
of an earlier test's, although the upgrade runs once per session (a copied SQLite file, a PostgreSQL schema
emptied and handed on, or dropped when a test changed its structure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from storage.db import Database
from storage.models import Attempt, Base
from storage.registry import CustomerRegistry
from tests.conftest import BACKENDS, make_test_database
from unogas_bot.clock import utcnow
from unogas_bot.domain import CustomerRecord

RECORD = CustomerRecord("UG-900001", "person", "Anna", "Neri", None, "NRENNA80A41H501X")


async def _rows(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in Base.metadata.tables.items()
        }


async def _new_attempt_id(db: Database) -> int:
    async with db.transaction() as session:
        result = await session.execute(insert(Attempt).values(kind="verify", key="tg:1", at=utcnow()))
        return int(result.inserted_primary_key[0])


@pytest.mark.parametrize("backend", BACKENDS)
async def test_what_a_test_stored_is_gone_for_the_next_and_ids_start_again(
    backend: str, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with make_test_database(backend, tmp_path / "a") as db:
        assert await db.current_revision() == (await _head(db))
        assert set((await _rows(db)).values()) == {0}
        await CustomerRegistry(db).upsert_many([RECORD])
        first_id = await _new_attempt_id(db)
        await _new_attempt_id(db)
        assert (await _rows(db))["customers"] == 1
    async with make_test_database(backend, tmp_path / "b") as db:
        assert await db.current_revision() == (await _head(db))
        assert set((await _rows(db)).values()) == {0}, await _rows(db)
        assert await _new_attempt_id(db) == first_id


@pytest.mark.postgres
async def test_a_schema_whose_structure_a_test_changed_is_not_handed_on(tmp_path: Path) -> None:
    async with make_test_database("postgres", tmp_path) as db, db.engine.begin() as conn:
        changed = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
        await conn.execute(text("ALTER TABLE customers ADD COLUMN leftover integer"))
    async with make_test_database("postgres", tmp_path) as db, db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_schema()"))).scalar_one() != changed
        columns = await conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'customers' AND table_schema = current_schema()"
            )
        )
        assert "leftover" not in {row[0] for row in columns}
        gone = await conn.execute(
            text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"),
            {"s": changed},
        )
        assert gone.scalar_one() == 0, "the changed schema was dropped"


async def _head(db: Database) -> str:
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
