"""A bulk import of the customer registry in progress: rows staged in a temporary table, checked there by
the database (repeated codes, collisions with the registry), then merged in one statement.

Split from storage/registry.py, which keeps the look-ups and opens the import (`CustomerRegistry.importing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    distinct,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import upsert_statement
from storage.models import Account, AuditEvent, Customer
from storage.operator import operator_detail

DATA_COLUMNS = ("kind", "first_name", "last_name", "company_name", "tax_code")

# A bulk import's rows, in the order of the staging table's columns: the file's line number, the customer
# code as printed and its key (domain.customer_code_key), the record's other fields and its name key.
StagedRow = tuple[int, str, str, str, str | None, str | None, str | None, str, str]

STAGING = Table(
    "customer_import_staging",
    MetaData(),  # not the models' metadata: no migration creates it, each import makes its own
    Column("line", Integer, nullable=False),
    Column("customer_code", String, nullable=False),
    Column("code_key", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("first_name", String),
    Column("last_name", String),
    Column("company_name", String),
    Column("tax_code", String, nullable=False),
    Column("name_key", String, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGING_INSERT = {
    "sqlite": f"INSERT INTO {STAGING.name} VALUES ({', '.join('?' * len(STAGING.c))})",
}


class RegistryImport:
    """One bulk import in progress, inside one transaction (see ``CustomerRegistry.importing``).

    Rows are first staged in a temporary table, with no index to maintain and no look-up per row, by the
    driver's fastest bulk path (executemany on SQLite, COPY on PostgreSQL). The database then finds repeated
    codes and merges the rows into the registry in one statement each, so the work per row in Python is
    only handing its values over.
    """

    def __init__(self, conn: AsyncConnection, dialect: str, clock: Callable[[], datetime]) -> None:
        self._conn = conn
        self._dialect = dialect
        self._clock = clock

    async def add(self, rows: Sequence[StagedRow]) -> None:
        """Stage rows; their customer codes must already be normalised (upper-case)."""
        if not rows:
            return
        if self._dialect == "postgresql":
            raw = await self._conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                STAGING.name, records=rows, columns=[column.name for column in STAGING.c]
            )
        else:
            await self._conn.exec_driver_sql(STAGING_INSERT[self._dialect], list(rows))

    async def repeats(self, limit: int) -> tuple[list[tuple[int, str, int]], int]:
        """Staged rows whose customer code was staged before (compared by key: "UG-1" repeats "UG1"): the
        first `limit` of them in line order, as (line, code, line where the code was first staged), and how
        many there are in all."""
        staged = STAGING.c
        total = await self._conn.scalar(
            select(func.count() - func.count(distinct(staged.code_key))).select_from(STAGING)
        )
        if not total:
            return [], 0
        first = func.min(staged.line).over(partition_by=staged.code_key).label("first_line")
        numbered = select(staged.line, staged.customer_code, first).subquery()
        result = await self._conn.execute(
            select(numbered.c.line, numbered.c.customer_code, numbered.c.first_line)
            .where(numbered.c.line > numbered.c.first_line)
            .order_by(numbered.c.line)
            .limit(limit)
        )
        return [tuple(row) for row in result], total  # type: ignore[misc]

    async def collisions(self, limit: int | None) -> tuple[list[tuple[int, str, str, str]], int]:
        """Staged rows whose code's key belongs to a registry customer with another printed code or another
        holder (another tax code): two customers the merge would make one. The first `limit` in line order
        (None: all) as (line, code in the file, code in the registry, "holder" when the holder differs), and
        how many in all."""
        staged = STAGING.c
        customers: Table = Customer.__table__  # type: ignore[assignment]
        other_code = customers.c.customer_code != staged.customer_code
        other_holder = customers.c.tax_code != staged.tax_code
        colliding = (
            select(
                staged.line,
                staged.customer_code,
                customers.c.customer_code,
                other_holder,
                func.count().over().label("total"),
            )
            .select_from(STAGING.join(customers, customers.c.code_key == staged.code_key))
            .where(or_(other_code, other_holder))
            .order_by(staged.line)
        )
        if limit is not None:
            colliding = colliding.limit(limit)
        rows = (await self._conn.execute(colliding)).all()
        found = [(line, code, stored, "holder" if holder else "") for line, code, stored, holder, _ in rows]
        return found, int(rows[0].total) if rows else 0

    async def audit_corrections(self, corrections: list[tuple[int, str, str, str]]) -> None:
        """Each deliberate correction (see `collisions`) as a "registry_corrected" audit event, naming the
        operator (storage.accounts.acting_operator) and the profile of that customer, if there is one."""
        if not corrections:
            return
        customers: Table = Customer.__table__  # type: ignore[assignment]
        now = self._clock()
        for line, code, stored, what in corrections:
            change = f"printed code {stored} -> {code}" if code != stored else ""
            if what == "holder":
                change = f"{change}, another holder" if change else f"another holder for {code}"
            profile = (
                select(Account.id)
                .join(customers, customers.c.id == Account.customer_id)
                .where(customers.c.customer_code == stored)
                .scalar_subquery()
            )
            await self._conn.execute(
                insert(AuditEvent).values(
                    at=now,
                    event="registry_corrected",
                    account_id=profile,
                    customer_code=code,
                    detail=operator_detail(f"import line {line}: {change}"),
                )
            )

    async def merge(self) -> tuple[int, int]:
        """Write the staged rows into the registry; returns (inserted, updated).

        The staged codes must be distinct (see ``repeats``). A customer whose data did not change is
        left alone and counts in neither number.
        """
        staged = STAGING.c
        customers: Table = Customer.__table__  # type: ignore[assignment]
        now = self._clock()
        columns = ["customer_code", "code_key", *DATA_COLUMNS, "name_key"]
        merge = upsert_statement(
            self._dialect,
            customers,
            key="code_key",
            # The file's spelling of the code ("UG-1" or "UG1") is the one shown from now on.
            update=["customer_code", *DATA_COLUMNS, "name_key", "updated_at"],
            changed_only=True,
        ).from_select(
            [*columns, "created_at", "updated_at"],
            # SQLite needs a WHERE in an INSERT ... SELECT ... ON CONFLICT, or it reads ON as a join's.
            select(
                *(staged[name] for name in columns),
                literal(now, customers.c.created_at.type),
                literal(now, customers.c.updated_at.type),
            ).where(true()),
        )
        if self._dialect == "postgresql":
            # Counted by the statement itself (a new row has no xmax): a count taken before it would miss
            # the rows another writer inserts meanwhile (an import once said "2 added, -2 updated").
            merged = merge.returning(literal_column("xmax = 0", Boolean).label("inserted")).cte("merged")
            inserted, written = (
                await self._conn.execute(
                    select(func.count().filter(merged.c.inserted), func.count()).select_from(merged)
                )
            ).one()
            return inserted, written - inserted
        # SQLite: the import's transaction holds the write lock from its start (BEGIN IMMEDIATE), so
        # nothing changes between the count and the statement.
        new = await self._conn.scalar(
            select(func.count())
            .select_from(STAGING)
            .where(~select(customers.c.id).where(customers.c.code_key == staged.code_key).exists())
        )
        written = (await self._conn.execute(merge)).rowcount
        return new or 0, written - (new or 0)
