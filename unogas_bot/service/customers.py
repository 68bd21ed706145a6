"""The customer registry's use cases for the command line: importing a bill file and loading the demo
customers. An import is one transaction (storage/customer_csv.py): all its rows, or none and every line
that is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from storage.customer_csv import ImportRejected, ImportResult, import_file
from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from storage.registry import CustomerRegistry
from unogas_bot.domain import CustomerRecord

__all__ = ["ImportRejected", "ImportResult", "import_customers", "load_demo_customers"]


async def import_customers(
    db: Database,
    path: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    corrections: bool = False,
) -> ImportResult:
    """Import the CSV file at `path`; raises ``ImportRejected`` and imports nothing when a row is wrong."""
    return await import_file(path, CustomerRegistry(db), progress=progress, corrections=corrections)


async def load_demo_customers(
    db: Database, *, skip_if_real: bool = False
) -> tuple[list[CustomerRecord], int]:
    """Load the demo customers: (the records loaded, 0). With `skip_if_real` nothing is loaded when the
    registry holds other customers: ([], how many), as made-up records must never join a real registry."""
    registry = CustomerRegistry(db)
    if skip_if_real:
        present = [await registry.get(record.customer_code) for record in DEMO_CUSTOMERS]
        others = await registry.count() - sum(record is not None for record in present)
        if others:
            return [], others
    return await load_demo(registry), 0
