"""Twenty customers pressing "Salva" at the same moment: the database constraints decide, the bot explains.

Through the whole bot (update processor, conversations, persistence) on SQLite and PostgreSQL: exactly one
profile is created, every other customer gets the conflict message, and no error handler runs.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.kit.botkit import SEED_SENTENCE as SAVED
from tests.kit.botkit import Bot, last_text, register_person, texts_of
from tests.kit.stores import stores
from unogas_bot.bench import data as bench_data
from unogas_bot.i18n import texts
from unogas_bot.offline import render_text

RIVALS = 20
LogCapture = pytest.LogCaptureFixture


def plain(key: str) -> str:
    return render_text(texts.t("it", key), "HTML")


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


async def test_twenty_users_save_the_same_customer_at_once(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    users = [bot.user(5000 + i) for i in range(RIVALS)]
    # Everybody reaches the summary (also concurrently): nobody has a profile yet, so all pass the checks.
    await asyncio.gather(
        *(register_person(user, email=f"mario{i}@example.it", save=False) for i, user in enumerate(users))
    )
    assert all("Salva" in user.buttons() for user in users)

    caplog.set_level(logging.INFO)
    answers = [last_text(events) for events in await asyncio.gather(*(u.press("Salva") for u in users))]
    assert sum(SAVED in answer for answer in answers) == 1
    assert sum(plain("save_conflict_customer") in answer for answer in answers) == RIVALS - 1
    assert await stores(bot.services).accounts.count() == 1
    assert not errors_logged(caplog)
    # Every conversation ended, in memory and in the database.
    assert not any("registration" in bot.app.user_data.get(u.user_id, {}) for u in users)


async def test_twenty_customers_save_the_same_email_at_once(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    customers = bench_data.person_records(RIVALS, start=9_000_000)
    await stores(bot.services).registry.upsert_many(customers)
    users = [bot.user(6000 + i) for i in range(RIVALS)]
    await asyncio.gather(
        *(
            register_person(
                user,
                {"code": c.customer_code, "first": c.first_name, "last": c.last_name, "tax": c.tax_code},
                email="famiglia@example.it",
                save=False,
            )
            for user, c in zip(users, customers, strict=True)
        )
    )
    assert all("Salva" in user.buttons() for user in users)

    caplog.set_level(logging.INFO)
    results = await asyncio.gather(*(u.press("Salva") for u in users))
    answers = ["\n".join(texts_of(events)) for events in results]
    assert sum(SAVED in answer for answer in answers) == 1
    losers = [answer for answer in answers if SAVED not in answer]
    assert len(losers) == RIVALS - 1
    # Each loser is told why and asked for another e-mail, the rest of the draft kept.
    assert all(plain("save_conflict_email") in answer for answer in losers)
    assert all(plain("q_email").split("\n")[0] in answer for answer in losers)
    assert await stores(bot.services).accounts.count() == 1
    assert not errors_logged(caplog)
