"""The CRM removes a customer (an inbound `it.unogas.customer.removed`, issue 24) while that customer is
in the middle of the registration, past the identity check: «Salva» tells them the code is no longer a
customer's, saves nothing (no account, no outbox event) and ends the form; an upsert that brings the
customer back lets them register again from the start."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.db import Database
from storage.models import Account, OutboxEvent
from tests.conftest import FakeClock
from tests.hardening.test_db_outage import EMAIL, at_summary, plain
from tests.kit.botkit import SEED_SENTENCE as SAVED
from tests.kit.botkit import last_text, running_bot, texts_of
from tests.ops.test_events_inbound import cloudevent
from unogas_bot.service import events as use_cases

CODE = "UG-100234"  # the demo customer MARIO of tests.kit.botkit
MARIO_ROW = {
    "customer_code": CODE,
    "kind": "person",
    "first_name": "Mario",
    "last_name": "Rossi",
    "company_name": "",
    "tax_code": "RSSMRA75C12H501H",
}


async def counts(database: Database) -> tuple[int, int]:
    async with database.session() as session:
        accounts = (await session.execute(select(func.count()).select_from(Account))).scalar_one()
        events = (await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
    return accounts, events


async def test_a_customer_removed_by_the_crm_mid_registration_is_told_at_salva_and_nothing_is_saved(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        user = bot.user(1001)
        await at_summary(user)  # the identity check passed: the record was there
        removal = cloudevent("removed", 1, {"customer_code": CODE})
        applied = await use_cases.apply_customer_event(bot.services, use_cases.parse_customer_event(removal))
        assert applied == "applied"

        events = await user.press("Salva")
        assert texts_of(events)[-1] == plain("customer_gone")
        assert await counts(database) == (0, 0), "no account and no account event"
        assert "registration" not in bot.app.user_data.get(1001, {}), "the form ended"  # type: ignore[attr-defined]

        # The CRM brings the customer back: the same chat registers from the start.
        upsert = cloudevent("upserted", 2, MARIO_ROW)
        applied = await use_cases.apply_customer_event(bot.services, use_cases.parse_customer_event(upsert))
        assert applied == "applied"
        await at_summary(user)
        events = await user.press("Salva")
        assert SAVED in last_text(events)
        assert await counts(database) == (1, 1), "one account, one registered event"
        async with database.session() as session:
            assert (await session.execute(select(Account.email))).scalar_one() == EMAIL
