"""A registration's limited look-ups on PostgreSQL: the keys' lock and the count it guards in ONE statement
(storage/attempts.py's `keys_locked`, migration 0009), one round trip instead of two on each identity
check and e-mail step. That the count still sees what the transactions it waited for committed is what
tests/storage/test_service_limits.py's and test_strangers.py's simultaneous attempts prove."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event

from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from tests.conftest import FakeClock
from tests.kit.stores import stores
from unogas_bot.config import Settings
from unogas_bot.service import registration
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import EmailAccepted, IdentityVerified

GIULIA = DEMO_CUSTOMERS[1]


@pytest.fixture
async def services(database: Database, clock: FakeClock) -> AsyncIterator[Services]:
    if database.dialect != "postgresql":
        pytest.skip("SQLite: the unit's write turn is the lock, and the look-up its one statement already")
    services = Services.create(Settings(bcrypt_rounds=4, hash_workers=1), database, clock=clock)
    await load_demo(stores(services).registry)
    yield services
    services.hasher.close()


def statements(db: Database) -> list[str]:
    """The SQL statements sent from now on (BEGIN and ROLLBACK are not statements of SQLAlchemy's)."""
    sent: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


async def test_the_identity_check_locks_and_counts_in_one_statement(services: Services) -> None:
    sent = statements(services.db)
    assert isinstance(await registration.verify_identity(services, 9, GIULIA), IdentityVerified)
    assert len(sent) == 1 and "pg_advisory_xact_lock" in sent[0] and "unogas_count_since" in sent[0]


async def test_the_email_step_locks_and_counts_in_one_statement(services: Services) -> None:
    sent = statements(services.db)
    free = await registration.choose_email(services, 9, GIULIA.customer_code, "giulia@example.it")
    assert isinstance(free, EmailAccepted)
    assert len(sent) == 1 and "pg_advisory_xact_lock" in sent[0] and "unogas_count_since" in sent[0]
