"""The customer's own data under attack: the current password asked again (profile changes, export,
erasure) is limited like a login however many attempts arrive at once; after an erasure nothing that
identifies the customer is left in any table; the new flows leak no secret to the tables or the logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import bcrypt

from storage.db import Database
from storage.demo import load_demo
from tests.conftest import FakeClock
from tests.kit.accountkit import MARIO_EMAIL, NEW_PASSWORD, WRONG_PASSWORD, login, registered, said
from tests.kit.botkit import ANSWER, MARIO, PASSWORD, TEST_SETTINGS, Bot, answer_all
from tests.kit.hardkit import dump_database, secret_variants
from tests.kit.stores import stores
from unogas_bot.domain import NewAccount
from unogas_bot.service import password_check, registration
from unogas_bot.service.context import Services
from unogas_bot.service.outcomes import InvalidCredentials, LoginLocked, PasswordConfirmed


async def test_current_password_guesses_at_once_are_bounded_and_never_block_the_session(
    database: Database, clock: FakeClock
) -> None:
    services = Services.create(TEST_SETTINGS, database, clock=clock)
    try:
        await load_demo(stores(services).registry)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        new = NewAccount(MARIO["code"], MARIO_EMAIL, hashed, "Il mio gatto?", hashed, None, 1)
        account = (await registration.register(services, new)).account  # type: ignore[union-attr]
        await stores(services).accounts.link_session(
            account.id, 1, timedelta(days=1)
        )  # the customer's own session
        await stores(services).accounts.link_session(
            account.id, 2, timedelta(days=1)
        )  # a session of another phone
        checks = 0
        real = services.hasher.verify

        async def counted(secret: str, stored: str | None) -> bool:
            nonlocal checks
            checks += stored is not None
            return await real(secret, stored)

        services.hasher.verify = counted  # type: ignore[method-assign]
        # Thirty Telegram users without a session of the profile guess its password at once: strangers.
        outcomes = await asyncio.gather(
            *(
                password_check.confirm_password(
                    services, 100 + i, account.id, f"{WRONG_PASSWORD} {i}", "test"
                )
                for i in range(30)
            )
        )
        assert checks == 20
        assert all(isinstance(o, LoginLocked | InvalidCredentials) for o in outcomes)
        stranger = await password_check.confirm_password(services, 200, account.id, PASSWORD, "test")
        assert isinstance(stranger, LoginLocked) and checks == 20
        # One session sends thirty wrong passwords at once: five are checked, and only it is held.
        await asyncio.gather(
            *(
                password_check.confirm_password(services, 2, account.id, WRONG_PASSWORD, "x")
                for _ in range(30)
            )
        )
        assert checks == 25
        right = await password_check.confirm_password(services, 1, account.id, PASSWORD, "erase")
        assert isinstance(right, PasswordConfirmed) and checks == 26
    finally:
        services.hasher.close()


async def test_after_an_erasure_no_table_holds_the_customers_profile_data(bot: Bot) -> None:
    user = await registered(bot)
    await login(user)
    await answer_all(user, "/cambia_telefono", PASSWORD)  # leave some history behind first
    await user.send("/annulla")
    await answer_all(user, "/cancella_profilo", PASSWORD)
    assert "cancellato" in said(await user.press("Cancella il profilo")).lower()
    await bot.app.update_persistence()  # the ended conversations' rows go with the next write-back
    stored = [value for _table, _column, value in await dump_database(bot.services.db)]
    # The customer record stays (it is the company's register of its customers, not the profile); the
    # profile's own data must be gone everywhere: e-mail, phone, question, hashes, Telegram user id.
    traces = {MARIO_EMAIL, "+393471234567", "Come si chiamava il mio primo gatto?", str(user.user_id)}
    found = [value for value in stored if any(trace in value for trace in traces)]
    assert not found, found
    assert not [value for value in stored if value.startswith("$2b$")]


async def test_the_new_flows_leak_no_secret_to_tables_or_logs(bot: Bot, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    user = await registered(bot)
    await login(user)
    await answer_all(user, "/cambia_password", WRONG_PASSWORD)
    await answer_all(user, "/cambia_password", PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    await answer_all(
        user, "/cambia_domanda", NEW_PASSWORD, "Dove sono nato io?", "Lungomare Nord", "Lungomare Nord"
    )
    await answer_all(user, "/i_miei_dati", NEW_PASSWORD)
    secrets = secret_variants(PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, ANSWER, "Lungomare Nord")
    stored = [value for _table, _column, value in await dump_database(bot.services.db)]
    assert not [s for s in secrets if any(s in value for value in stored)]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not [s for s in secrets if s in logged]
