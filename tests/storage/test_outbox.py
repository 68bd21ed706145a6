"""The transactional outbox (issue 24) on SQLite and PostgreSQL: an account change and its event commit
together or not at all; CloudEvents 1.0 fields; a sequence per account; no hash unless shared; an erasure
drops the account's other events and ends its stream."""

from __future__ import annotations

import json

from storage import outbox
from storage.db import Database
from storage.demo import DEMO_CUSTOMERS, load_demo
from storage.outbox import Outbox
from storage.registry import CustomerRegistry
from storage.unit_of_work import UnitOfWork
from tests.conftest import FakeClock
from tests.kit.stores import KitAccounts
from tests.storage.test_storage_accounts import new_account
from unogas_bot.service.audit import audit

MARIO = DEMO_CUSTOMERS[0]


async def events(db: Database) -> list[dict]:
    async with db.session() as session:
        return [json.loads(e.payload) for e in await Outbox(session).listing()]


async def test_a_change_and_its_event_commit_together(database: Database, clock: FakeClock) -> None:
    await load_demo(CustomerRegistry(database))
    async with UnitOfWork(database, clock) as uow:
        await audit(uow, "registered", await uow.accounts.register(new_account(MARIO, "mario@example.it")))
        # no commit: rolled back
    assert await events(database) == []
    async with UnitOfWork(database, clock) as uow:
        view = await uow.accounts.register(new_account(MARIO, "mario@example.it"))
        await audit(uow, "registered", view)  # the use case's event, as service.registration writes it
        await uow.commit()
    (event,) = await events(database)
    assert event["specversion"] == "1.0"
    assert event["type"] == "it.unogas.account.registered"
    assert event["subject"] == str(view.id)
    assert event["sequence"] == 1
    assert event["time"] == "2025-03-10T09:30:00.000Z"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == {
        "customer_code": MARIO.customer_code,
        "email": "mario@example.it",
        "phone": "+393471234567",
        "registered_at": "2025-03-10T09:30:00.000Z",
    }
    assert "hash" not in json.dumps(event)


async def test_hashes_only_when_shared(database: Database, clock: FakeClock) -> None:
    await load_demo(CustomerRegistry(database))
    outbox.configure(database.engine, share_credentials=True)
    repo = KitAccounts(database, clock=clock)
    view = await repo.register(new_account(MARIO, "mario@example.it"))
    async with UnitOfWork(database, clock) as uow:
        await uow.accounts.change_password(view.id, "$2b$04$another-hash")
        await audit(uow, "password_changed", view)  # as service.profile.change_password writes it
        await uow.commit()
    registered, changed = await events(database)
    assert registered["data"]["password_hash"] == "$2b$04$hash-of-the-password"
    assert registered["data"]["security_answer_hash"] == "$2b$04$hash-of-the-answer"
    assert changed["type"] == "it.unogas.account.password_changed"
    assert changed["data"]["password_hash"] == "$2b$04$another-hash"
    assert changed["sequence"] == 2


async def test_erasure_drops_the_accounts_events_and_ends_its_stream(
    database: Database, clock: FakeClock
) -> None:
    await load_demo(CustomerRegistry(database))
    repo = KitAccounts(database, clock=clock)
    view = await repo.register(new_account(MARIO, "mario@example.it"))
    await repo.unlock(view.id)
    async with UnitOfWork(database, clock) as uow:
        await uow.profiles.erase(view.id)
        await uow.accounts.add_event("erased", account_id=view.id)
        await uow.commit()
    (erased,) = await events(database)
    assert erased["type"] == "it.unogas.account.erased"
    assert erased["sequence"] == 3
    assert erased["data"] == {"account_id": view.id}
    assert MARIO.customer_code not in json.dumps(erased)
    # A late event about the account (a check in flight during the erasure) writes nothing.
    async with UnitOfWork(database, clock) as uow:
        await uow.accounts.add_event("login_locked", account_id=view.id)
        await uow.commit()
    assert [e["type"] for e in await events(database)] == ["it.unogas.account.erased"]


async def test_the_retention_purges_sent_events_and_without_a_broker_unsent_ones(
    database: Database, clock: FakeClock
) -> None:
    from unogas_bot.bot.housekeeping import purge_events
    from unogas_bot.config import Settings
    from unogas_bot.service.context import Services

    await load_demo(CustomerRegistry(database))
    repo = KitAccounts(database, clock=clock)
    view = await repo.register(new_account(MARIO, "mario@example.it"))
    await repo.unlock(view.id)
    async with database.transaction() as session:
        first, _ = await Outbox(session, clock).pending(10)
        await Outbox(session, clock).mark_sent([first.row])
    clock.advance(days=31)
    relayed = Services.create(Settings(amqp_url="amqp://u:p@h/"), database, clock=clock)
    assert await purge_events(relayed) == 1  # the sent one; the unsent one waits for the broker
    assert [e["type"] for e in await events(database)] == ["it.unogas.account.unlocked"]
    embedded = Services.create(Settings(), database, clock=clock)
    assert await purge_events(embedded) == 1  # no broker: the outbox stays bounded
    assert await events(database) == []
    relayed.hasher.close()
    embedded.hasher.close()
