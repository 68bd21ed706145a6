"""The customer registry: who is a Unogas customer, as printed on the bills."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    Select,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from storage.attempts import keys_locked, lock_keys, locked_window_count, window_count
from storage.db import Database, Lookup, upsert_statement
from storage.models import Account, Customer
from storage.registry_import import DATA_COLUMNS, STAGING, RegistryImport, StagedRow
from unogas_bot import rules
from unogas_bot.clock import utcnow
from unogas_bot.domain import CustomerRecord, customer_code_key
from unogas_bot.rules.replies import BUSINESS, PERSON

__all__ = ["CustomerRegistry", "RegistryImport", "StagedRow", "name_key"]

_IN_CHUNK = 900
# PostgreSQL advisory lock held by every transaction that writes the registry in bulk (an import).
IMPORT_LOCK = "registry:import"


async def _one_writer_at_a_time(conn: Any, dialect: str) -> None:
    """Wait for any other import to end: each checks its rows against the registry as it finds it (two
    customers must never become one), so two at once would each miss the other's rows. SQLite's one
    write lock already does this."""
    if dialect == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": IMPORT_LOCK}
        )


def name_key(kind: str, first_name: str | None, last_name: str | None, company_name: str | None) -> str:
    """The registry's matching key; raises ``rules.Invalid``/``ValueError`` when names are missing."""
    if kind == PERSON:
        if not first_name or not last_name:
            raise ValueError("a person needs first_name and last_name")
        return rules.names.person_key(first_name) + "|" + rules.names.person_key(last_name)
    if kind == BUSINESS:
        if not company_name:
            raise ValueError("a business needs company_name")
        return rules.names.company_key(company_name)
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


_RECORD_COLUMNS = (
    Customer.customer_code,
    Customer.kind,
    Customer.first_name,
    Customer.last_name,
    Customer.company_name,
    Customer.tax_code,
)


# The registry's entry for a code, with its name key (what `_compare` needs): a Lookup, one driver call on
# SQLite.
_ENTRY = Lookup(select(*_RECORD_COLUMNS, Customer.name_key).where(Customer.code_key == bindparam("code")))

# The identity check of a registration in one statement: the failed checks counted against its two keys,
# the entry for the code typed (NULLs when there is none: the join keeps the one row) and whether that
# customer has a profile already.
_IDENTITY_CHECK = Lookup(
    select(
        window_count("first"),
        window_count("second"),
        window_count("third"),
        *_RECORD_COLUMNS,
        Customer.name_key,
        select(Account.id).where(Account.customer_id == Customer.id).exists(),
    ).select_from(
        select(literal_column("1").label("one"))
        .subquery("one_row")
        .outerjoin(Customer, Customer.code_key == bindparam("code"))
    )
)

# The same on PostgreSQL with the keys' lock taken first, in the same statement (storage/attempts.py's
# `keys_locked`): the one row the entry is joined to is the lock's.
_LOCKED = keys_locked()
_IDENTITY_CHECK_LOCKED = Lookup(
    select(
        locked_window_count("first", _LOCKED),
        locked_window_count("second", _LOCKED),
        locked_window_count("third", _LOCKED),
        *_RECORD_COLUMNS,
        Customer.name_key,
        select(Account.id).where(Account.customer_id == Customer.id).exists(),
    ).select_from(_LOCKED.outerjoin(Customer, Customer.code_key == bindparam("code")))
)

# A registry entry as read: the record and its name key.
_Entry = tuple[CustomerRecord, str]


def _entry(fields: Sequence[Any]) -> _Entry | None:
    *record, key = fields
    return None if key is None else (CustomerRecord(*record), key)


def _compare(entry: _Entry | None, identity: CustomerRecord) -> CustomerRecord | None:
    """The entry's record when code (already), kind, tax code and names (by key) match the identity."""
    if entry is None:
        return None
    record, key = entry
    try:
        wanted_key = name_key(identity.kind, identity.first_name, identity.last_name, identity.company_name)
    except ValueError:
        return None
    if record.kind != identity.kind or record.tax_code != identity.tax_code or key != wanted_key:
        return None
    return record


@dataclass(frozen=True, slots=True)
class IdentityCheck:
    """What a registration's identity check reads, all at once (see `RegistryReader.check_identity`)."""

    failures: int  # the larger of the two keys' counts of failed checks in the window
    has_account: bool  # the customer with the code typed has a profile already
    entry: _Entry | None  # the registry's entry for the code typed
    by_first: int = 0  # the count under the first key alone
    by_second: int = 0  # the count under the code's key: the registry's, or the unknown code's

    @property
    def printed_code(self) -> str | None:
        """The code as the registry prints it, if the code typed is a registry customer's."""
        return self.entry[0].customer_code if self.entry is not None else None

    def match(self, identity: CustomerRecord) -> CustomerRecord | None:
        """The registry record when the identity matches it (see `CustomerRegistry.match`). A separate step,
        so that a check refused by its limit compares nothing."""
        return _compare(self.entry, identity)


class RegistryReader:
    """The registry's identity check inside a unit of work's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def check_identity(
        self,
        customer_code: str,
        *,
        kind: str,
        first: str,
        second: str,
        unknown: str,
        since: datetime,
        locked: bool = False,
    ) -> IdentityCheck:
        """Everything the identity check of `customer_code` needs, in one look-up: the attempts of `kind`
        counted since `since` under the key `first` and under the code's key (`second` when the code is a
        registry customer's, `unknown` when it is not), the registry's entry and whether the customer has
        a profile. With `locked` the three keys are locked first, as `Attempts.lock` does (on PostgreSQL
        in the look-up's own statement, storage/attempts.py's `keys_locked`)."""
        conn = await self._session.connection()
        params = {
            "kind": kind,
            "first": first,
            "second": second,
            "third": unknown,
            "since": since,
            "code": customer_code_key(customer_code),
        }
        if locked and conn.dialect.name == "postgresql":
            lookup, params["lock_keys"] = _IDENTITY_CHECK_LOCKED, lock_keys((first, second, unknown))
        else:
            lookup = _IDENTITY_CHECK  # SQLite: the unit's write turn is the lock
        ((count_first, count_known, count_unknown, *fields, has_account),) = await lookup.rows(conn, **params)
        entry = _entry(fields)
        first_count = int(count_first)
        code_count = int(count_known if entry is not None else count_unknown)
        return IdentityCheck(max(first_count, code_count), bool(has_account), entry, first_count, code_count)


class CustomerRegistry:
    """Look-ups and bulk imports of the customer registry."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def match(self, identity: CustomerRecord) -> CustomerRecord | None:
        """The registry record when code, kind, tax code and name all match the identity, else None.

        One indexed look-up by customer code; the rest is compared here. Names are compared by their keys
        (case, accents, spaces, apostrophes and company legal-form spelling do not matter).
        """
        async with self._db.read() as conn:
            rows = await _ENTRY.rows(conn, code=customer_code_key(identity.customer_code))
        return _compare(_entry(rows[0]) if rows else None, identity)  # code_key is unique: one row at most

    async def get(self, customer_code: str) -> CustomerRecord | None:
        """The record with this customer code, or None."""
        async with self._db.session() as session:
            wanted = Customer.code_key == customer_code_key(customer_code)
            row = (await session.execute(select(*_RECORD_COLUMNS).where(wanted))).one_or_none()
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
            await _one_writer_at_a_time(conn, self._db.dialect)
            if self._db.dialect == "postgresql":
                # The look-ups below run as prepared statements; a generic plan made while the table was
                # still small could keep seq-scanning it as it grows within this transaction (seen: 10x).
                await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            stmt = upsert_statement(
                self._db.dialect,
                Customer.__table__,  # type: ignore[arg-type]
                key="code_key",
                update=["customer_code", *DATA_COLUMNS, "name_key", "updated_at"],
                changed_only=True,
            )
            key = customer_code_key
            for batch in _batches(records, batch_size):
                # Last one wins inside a batch; earlier batches are already visible to the query below.
                by_code = {key(record.customer_code): record for record in batch}
                existing: dict[str, CustomerRecord] = {}
                for lookup in self._lookups(list(by_code)):
                    result = await conn.execute(lookup)
                    existing.update((key(row.customer_code), _to_record(row)) for row in result)
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

    @asynccontextmanager
    async def importing(self) -> AsyncIterator[RegistryImport]:
        """A bulk import in ONE transaction: stage rows, check them, merge. Leaving the block by an
        exception rolls everything back, so the registry never holds half a file."""
        async with self._db.transaction(bulk=True) as session:  # no statement timeout: files can be big
            conn = await session.connection()
            await _one_writer_at_a_time(conn, self._db.dialect)
            await conn.run_sync(lambda sync_conn: STAGING.create(sync_conn))
            yield RegistryImport(conn, self._db.dialect, self._clock)
            # PostgreSQL drops the table at commit (ON COMMIT DROP); SQLite keeps temporary tables for the
            # connection's life, and pooled connections live long.
            if self._db.dialect != "postgresql":
                await conn.run_sync(lambda sync_conn: STAGING.drop(sync_conn))

    def _lookups(self, keys: list[str]) -> Iterator[Select[Any]]:
        """Statements fetching the registry rows of these code keys, each an indexed look-up."""
        query = select(*_RECORD_COLUMNS)
        if self._db.dialect == "postgresql":
            # One array parameter: planned in no time, unlike an IN list of thousands of parameters.
            yield query.where(Customer.code_key == any_(bindparam("codes", keys, type_=ARRAY(String))))
            return
        # Expanding IN lists stay well below SQLite's historic 999-variable limit.
        for start in range(0, len(keys), _IN_CHUNK):
            yield query.where(Customer.code_key.in_(keys[start : start + _IN_CHUNK]))

    @staticmethod
    def _row(record: CustomerRecord, now: datetime) -> dict[str, Any]:
        if record.customer_code != record.customer_code.upper():
            raise ValueError(f"customer code must be upper-case: {record.customer_code!r}")
        return {
            "customer_code": record.customer_code,
            "code_key": customer_code_key(record.customer_code),
            "kind": record.kind,
            "first_name": record.first_name,
            "last_name": record.last_name,
            "company_name": record.company_name,
            "tax_code": record.tax_code,
            "name_key": name_key(record.kind, record.first_name, record.last_name, record.company_name),
            "created_at": now,
            "updated_at": now,
        }
