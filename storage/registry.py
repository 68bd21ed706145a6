"""The customer registry: who is a Unogas customer, as printed on the bills."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Select, String, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from storage.db import Database, upsert_statement, utcnow
from storage.models import BUSINESS, PERSON, Customer
from unogas_bot import validation

_IN_CHUNK = 900


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A registry entry. Names are normalised by ``validation``; unused name fields are None."""

    customer_code: str
    kind: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    tax_code: str


@dataclass(frozen=True, slots=True)
class Identity:
    """What a customer typed to prove who they are, already normalised by ``validation``."""

    customer_code: str
    kind: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    tax_code: str


def name_key(kind: str, first_name: str | None, last_name: str | None, company_name: str | None) -> str:
    """The registry's matching key; raises ``validation.Invalid``/``ValueError`` when names are missing."""
    if kind == PERSON:
        if not first_name or not last_name:
            raise ValueError("a person needs first_name and last_name")
        return validation.person_key(first_name) + "|" + validation.person_key(last_name)
    if kind == BUSINESS:
        if not company_name:
            raise ValueError("a business needs company_name")
        return validation.company_key(company_name)
    raise ValueError(f"unknown customer kind: {kind!r}")


def _to_record(row: Any) -> CustomerRecord:
    return CustomerRecord(
        customer_code=row.customer_code,
        kind=row.kind,
        first_name=row.first_name,
        last_name=row.last_name,
        company_name=row.company_name,
        tax_code=row.tax_code,
    )


def _batches(items: Iterable[CustomerRecord], size: int) -> Iterator[list[CustomerRecord]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


_DATA_COLUMNS = ("kind", "first_name", "last_name", "company_name", "tax_code")
_RECORD_COLUMNS = (
    Customer.customer_code,
    Customer.kind,
    Customer.first_name,
    Customer.last_name,
    Customer.company_name,
    Customer.tax_code,
)


class CustomerRegistry:
    """Look-ups and bulk imports of the customer registry."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def match(self, identity: Identity) -> CustomerRecord | None:
        """The registry record when code, kind, tax code and name all match the identity, else None.

        One indexed look-up by customer code; the rest is compared here. Names are compared by their keys
        (case, accents, spaces, apostrophes and company legal-form spelling do not matter).
        """
        try:
            wanted_key = name_key(
                identity.kind, identity.first_name, identity.last_name, identity.company_name
            )
        except ValueError:
            return None
        async with self._db.read() as session:
            row = (
                await session.execute(
                    select(*_RECORD_COLUMNS, Customer.name_key).where(
                        Customer.customer_code == identity.customer_code
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        if row.kind != identity.kind or row.tax_code != identity.tax_code or row.name_key != wanted_key:
            return None
        return _to_record(row)

    async def get(self, customer_code: str) -> CustomerRecord | None:
        """The record with this customer code, or None."""
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(*_RECORD_COLUMNS).where(Customer.customer_code == customer_code.strip().upper())
                )
            ).one_or_none()
        return None if row is None else _to_record(row)

    async def count(self) -> int:
        """How many customers the registry holds."""
        async with self._db.session() as session:
            return (await session.execute(select(func.count()).select_from(Customer))).scalar_one()

    async def upsert_many(self, records: Iterable[CustomerRecord], batch_size: int = 5000) -> tuple[int, int]:
        """Insert new customers and update changed ones, all in ONE transaction; returns (inserted, updated).

        ``records`` may be a lazy iterable (it is consumed batch by batch). Unchanged records count in
        neither number. If the same code appears twice, the later record wins. Any exception (also one
        raised by the iterable) rolls everything back.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        inserted = updated = 0
        async with self._db.transaction() as session:
            conn = await session.connection()
            if self._db.dialect == "postgresql":
                # The look-ups below run as prepared statements; a generic plan made while the table was
                # still small could keep seq-scanning it as it grows within this transaction (seen: 10x).
                await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            stmt = upsert_statement(
                self._db.dialect,
                Customer.__table__,  # type: ignore[arg-type]
                key="customer_code",
                update=[*_DATA_COLUMNS, "name_key", "updated_at"],
                changed_only=True,
            )
            for batch in _batches(records, batch_size):
                # Last one wins inside a batch; earlier batches are already visible to the query below.
                by_code = {record.customer_code: record for record in batch}
                existing: dict[str, CustomerRecord] = {}
                for lookup in self._lookups(list(by_code)):
                    result = await conn.execute(lookup)
                    existing.update((row.customer_code, _to_record(row)) for row in result)
                now = self._clock()
                params = []
                for code, record in by_code.items():
                    old = existing.get(code)
                    if old == record:
                        continue
                    if old is None:
                        inserted += 1
                    else:
                        updated += 1
                    params.append(self._row(record, now))
                if params:
                    # A list of parameter sets: executemany. RETURNING makes SQLAlchemy send pages of
                    # multi-row VALUES ("insertmanyvalues") rather than one statement per row: about twice
                    # as fast on PostgreSQL.
                    await conn.execute(stmt.returning(Customer.id), params)
        return inserted, updated

    def _lookups(self, codes: list[str]) -> Iterator[Select[Any]]:
        """Statements fetching the registry rows of these codes, each an indexed look-up."""
        query = select(*_RECORD_COLUMNS)
        if self._db.dialect == "postgresql":
            # One array parameter: planned in no time, unlike an IN list of thousands of parameters.
            yield query.where(Customer.customer_code == any_(bindparam("codes", codes, type_=ARRAY(String))))
            return
        # Expanding IN lists stay well below SQLite's historic 999-variable limit.
        for start in range(0, len(codes), _IN_CHUNK):
            yield query.where(Customer.customer_code.in_(codes[start : start + _IN_CHUNK]))

    @staticmethod
    def _row(record: CustomerRecord, now: datetime) -> dict[str, Any]:
        if record.customer_code != record.customer_code.upper():
            raise ValueError(f"customer code must be upper-case: {record.customer_code!r}")
        return {
            "customer_code": record.customer_code,
            "kind": record.kind,
            "first_name": record.first_name,
            "last_name": record.last_name,
            "company_name": record.company_name,
            "tax_code": record.tax_code,
            "name_key": name_key(record.kind, record.first_name, record.last_name, record.company_name),
            "created_at": now,
            "updated_at": now,
        }
