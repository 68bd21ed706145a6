"""The service tier: each use case called directly, on an SQLite file copied from a template that was
brought to the latest schema once per session (a copy costs a millisecond, an upgrade a second), with a
frozen clock and bcrypt at cost 4. No bot, no Telegram: what a use case decides, stores and audits."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import bcrypt
import pytest

from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from storage.registry import CustomerRegistry
from tests.conftest import FakeClock
from tests.kit.stores import Stores, stores
from unogas_bot.config import Limits, Settings
from unogas_bot.domain import AccountView, NewAccount
from unogas_bot.service import registration
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import Registered

SETTINGS = Settings(bcrypt_rounds=4, hash_workers=1, limits=Limits(hash_budget_per_user=1000))
MARIO, GIULIA = DEMO_CUSTOMERS[0], DEMO_CUSTOMERS[1]
EMAIL, PASSWORD, ANSWER = "mario.rossi@example.it", "Lanterna verde 1987", "briciola bianca"
QUESTION = "Come si chiamava il mio primo gatto?"
OWNER = 1001  # the Telegram user who registers Mario's profile


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file at the latest schema with the demo customers, made once."""
    path = tmp_path_factory.mktemp("service") / "template.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await db.upgrade()
            await load_demo(CustomerRegistry(db))
        finally:
            await db.dispose()

    asyncio.run(build())
    return path


@pytest.fixture
async def services(template_db: Path, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    copy = tmp_path / "service.db"
    shutil.copyfile(template_db, copy)
    services = Services.create(SETTINGS, Database(f"sqlite+aiosqlite:///{copy}"), clock=clock)
    try:
        yield services
    finally:
        await services.close()


@pytest.fixture
def look(services: Services) -> Stores:
    """What a test reads back from storage (never what the use case under test uses to decide)."""
    return stores(services)


def hashed(secret: str) -> str:
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4)).decode()


def new_mario(email: str = EMAIL, user_id: int = OWNER, **extra: object) -> NewAccount:
    values: dict = {
        "customer_code": MARIO.customer_code,
        "email": email,
        "password_hash": hashed(PASSWORD),
        "security_question": QUESTION,
        "answer_hash": hashed(ANSWER),
        "phone": "+393471234567",
        "telegram_user_id": user_id,
    }
    values.update(extra)
    return NewAccount(**values)


@pytest.fixture
async def mario(services: Services) -> AccountView:
    """Mario's profile, registered through the use case."""
    outcome = await registration.register(services, new_mario())
    assert isinstance(outcome, Registered)
    return outcome.account


async def events(look: Stores, account_id: int) -> list[str]:
    """The profile's audit events, oldest first."""
    return [entry.event for entry in reversed(await look.accounts.recent_events(account_id, limit=100))]
