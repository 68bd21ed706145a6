"""The CRM's customer events applied to the registry (issue 24), inside the caller's transaction.

Each event's id is recorded with its effect, so a redelivery changes nothing; `customer_sequences` keeps
the newest `sequence` applied per customer (by code key), so an older event never overwrites a newer one.
The registry's rules are the CSV import's (storage/registry_import.py): a record whose code belongs to
another holder (another tax code) or is printed differently is refused, never merged into that customer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Account, Customer, CustomerSequence, InboundEvent
from storage.registry_import import StagedRow
from unogas_bot.clock import utcnow

# What applying an event came to (also the metric's label values).
APPLIED, DUPLICATE, STALE, KEPT = "applied", "duplicate", "stale", "kept"


class CustomerConflict(Exception):
    """The record would make two customers one (the CSV import refuses the same); nothing was stored."""


class CustomerEvents:
    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock
        bind = session.bind
        self._dialect = bind.dialect.name if bind is not None else "sqlite"

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    async def apply(self, event_id: str, code_key: str, sequence: int, row: StagedRow | None) -> str:
        """Apply one event: `row` (the CSV's staged form) for an upsert, None for a removal."""
        recorded = await self._session.execute(
            self._insert(InboundEvent.__table__)
            .values(event_id=event_id, received_at=self._clock())
            .on_conflict_do_nothing()
            .returning(InboundEvent.__table__.c.event_id)
        )
        if recorded.scalar_one_or_none() is None:
            return DUPLICATE
        table = CustomerSequence.__table__
        stmt = self._insert(table).values(code_key=code_key, sequence=sequence)
        newer = await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.code_key],
                set_={"sequence": stmt.excluded.sequence},
                where=table.c.sequence < stmt.excluded.sequence,
            ).returning(table.c.sequence)
        )
        if newer.scalar_one_or_none() is None:
            return STALE  # an older (or the same) state than the one applied: its id is recorded, no more
        if row is None:
            return await self._remove(code_key)
        return await self._upsert(row)

    async def _remove(self, code_key: str) -> str:
        has_profile = select(Account.id).join(Customer, Customer.id == Account.customer_id)
        if (await self._session.execute(has_profile.where(Customer.code_key == code_key))).first():
            return KEPT  # the profile needs its record; support decides (docs/events.md)
        await self._session.execute(delete(Customer).where(Customer.code_key == code_key))
        return APPLIED

    async def _upsert(self, row: StagedRow) -> str:
        _, code, key, kind, first, last, company, tax, name_key = row
        found = (
            await self._session.execute(
                select(Customer.id, Customer.customer_code, Customer.tax_code).where(Customer.code_key == key)
            )
        ).one_or_none()
        now = self._clock()
        values = {
            "kind": kind,
            "first_name": first,
            "last_name": last,
            "company_name": company,
            "tax_code": tax,
            "name_key": name_key,
            "updated_at": now,
        }
        if found is None:
            await self._session.execute(
                insert(Customer).values(customer_code=code, code_key=key, created_at=now, **values)
            )
            return APPLIED
        if found.customer_code != code or found.tax_code != tax:
            what = (
                "another holder (tax code)" if found.tax_code != tax else f"printed as {found.customer_code}"
            )
            raise CustomerConflict(f"customer code {code} is {what} in the registry: not merged")
        await self._session.execute(update(Customer).where(Customer.id == found.id).values(**values))
        return APPLIED
