"""Alembic migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from storage.db import Database, alembic_config
from storage.models import Base
from unogas_bot.domain import customer_code_key

TABLES = {"customers", "accounts", "telegram_sessions", "attempts", "audit_events"}
# The conversation state of storage/persistence.py (migration 0002).
TABLES |= {"bot_user_data", "bot_chat_data", "bot_conversations"}
# The update inbox and the leadership epoch of storage/inbox.py (migration 0006).
TABLES |= {"bot_inbox", "bot_leadership"}
# The account-event outbox and the customer events' bookkeeping (migration 0008, issue 24).
TABLES |= {"outbox_events", "event_streams", "inbound_events", "customer_sequences"}
# The count of a limit read in its lock's statement: a function on PostgreSQL (migration 0009).
HEAD = "0009_locked_counts"


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _constraint_names(connection: Connection) -> dict[str, set[str]]:
    """Every named constraint and index per table, as the database reports them."""
    inspector = inspect(connection)
    names: dict[str, set[str]] = {}
    for table in TABLES:
        # SQLite cannot name the primary key of an AUTOINCREMENT table (accounts): it is written inline.
        found = {inspector.get_pk_constraint(table)["name"] or f"pk_{table}"}
        found |= {c["name"] for c in inspector.get_unique_constraints(table)}
        found |= {c["name"] for c in inspector.get_foreign_keys(table)}
        found |= {c["name"] for c in inspector.get_check_constraints(table)}
        found |= {i["name"] for i in inspector.get_indexes(table) if not i.get("duplicates_constraint")}
        names[table] = found
    return names


def _model_constraint_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        names[table.name] = {str(c.name) for c in table.constraints} | {str(i.name) for i in table.indexes}
    return names


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_an_empty_database(empty_database: Database) -> None:
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_table_names) == set()
    assert await empty_database.current_revision() is None
    await empty_database.upgrade()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head == HEAD
    assert await empty_database.current_revision() == head
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_table_names) == TABLES | {"alembic_version"}


async def test_models_match_the_migrated_schema(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []
        # compare_metadata ignores check constraints and names: compare every name explicitly.
        assert await conn.run_sync(_constraint_names) == _model_constraint_names()


async def test_upgrade_twice_is_a_no_op(database: Database) -> None:
    async with database.engine.connect() as conn:
        before = await conn.run_sync(_constraint_names)
    await database.upgrade()
    assert await database.current_revision() == HEAD
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_constraint_names) == before
        assert await conn.run_sync(_differences) == []


async def test_downgrade_to_base_and_back(database: Database) -> None:
    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    await database.run_schema_change(downgrade)
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_table_names) == {"alembic_version"}
    await database.upgrade()
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


def test_command_line_environment_with_a_url(tmp_path: Path) -> None:
    """env.py also runs from the alembic command line, given an async URL (here through the ini file)."""
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    command.upgrade(config, "head")
    command.upgrade(config, "head")

    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert tables >= TABLES
    assert version == [(HEAD,)]


def test_the_ini_file_points_at_the_migrations() -> None:
    from alembic.config import Config

    ini = Path(__file__).resolve().parents[2] / "storage" / "alembic.ini"
    script = ScriptDirectory.from_config(Config(str(ini)))
    assert script.get_current_head() == HEAD


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///unogas.db", "sqlite+aiosqlite:////var/lib/unogas/bot.db"]
)
def test_default_sqlite_url(url: str) -> None:
    from storage.db import default_sqlite_url

    assert default_sqlite_url(url.removeprefix("sqlite+aiosqlite:///")) == url
    assert default_sqlite_url() == "sqlite+aiosqlite:///unogas.db"


async def test_step_by_step_from_0001_keeps_the_data(empty_database: Database) -> None:
    """A database of the first release (0001, with data in it) upgrades to the conversation tables."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from storage.models import Attempt

    await empty_database.upgrade("0001")
    async with empty_database.transaction() as session:
        at = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
        await session.execute(sa.insert(Attempt).values(kind="verify", key="1", at=at))
    await empty_database.upgrade()
    assert await empty_database.current_revision() == HEAD
    async with empty_database.engine.connect() as conn:
        assert await conn.run_sync(_table_names) == TABLES | {"alembic_version"}
        assert await conn.run_sync(_differences) == []
    async with empty_database.session() as session:
        assert (await session.execute(sa.text("SELECT count(*) FROM attempts"))).scalar_one() == 1


async def test_0003_gives_stored_customers_their_code_key(empty_database: Database) -> None:
    """Customers imported before 0003 keep their code as printed and get the key a typed code is compared
    by, the same key domain.customer_code_key computes."""
    import sqlalchemy as sa

    await empty_database.upgrade("0002")
    async with empty_database.transaction() as session:
        for n, code in enumerate(("UG-100234", "AB/12-3", "777")):
            await session.execute(
                sa.text(
                    "INSERT INTO customers (customer_code, kind, first_name, last_name, company_name,"
                    " tax_code, name_key, created_at, updated_at) VALUES (:code, 'business', NULL, NULL,"
                    " :name, '02847390586', :name, '2025-03-10 09:30:00', '2025-03-10 09:30:00')"
                ),
                {"code": code, "name": f"company {n}"},
            )
    await empty_database.upgrade("0003")
    async with empty_database.session() as session:
        rows = (await session.execute(sa.text("SELECT customer_code, code_key FROM customers"))).all()
    assert sorted(rows) == sorted((code, customer_code_key(code)) for code in ("UG-100234", "AB/12-3", "777"))
    assert customer_code_key("ab/12-3") == "AB123"
