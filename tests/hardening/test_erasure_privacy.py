"""Erasure that leaves nothing re-identifiable (issue 21, item 3).

* The audit trail is pseudonymised by the customer code's key (typed "UG100234", "ug/100234" or printed
  "UG-100234"), by the profile's number and by the customer's own Telegram accounts.
* An event written by a check still in flight when the profile was erased is pseudonymised as it is
  written: it never links the profile's number to the code or a Telegram account again.
* The export names other Telegram accounts only as "another Telegram account".
* The support CLI at LOG_LEVEL=DEBUG writes no tax code, name or e-mail to its log.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from storage.db import Database
from storage.models import AuditEvent
from tests.conftest import FakeClock
from tests.kit.accountkit import MARIO_EMAIL, WRONG_PASSWORD, login, registered, said
from tests.kit.botkit import GIULIA, MARIO, PASSWORD, Bot, answer_all, running_bot
from tests.kit.stores import stores
from unogas_bot.domain import customer_code_key
from unogas_bot.offline import Sent
from unogas_bot.service import erasure, password_check
from unogas_bot.service import login as login_service
from unogas_bot.service.outcomes import Erased, InvalidCredentials

OWNER, STRANGER = 1001, 2001


async def audit_rows(db: Database) -> list[tuple[str, int | None, str | None, int | None]]:
    async with db.session() as session:
        rows = await session.execute(
            select(
                AuditEvent.event, AuditEvent.account_id, AuditEvent.customer_code, AuditEvent.telegram_user_id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def mistype_identity(bot: Bot, user_id: int, code: str) -> None:
    """A registration of Mario's code typed as `code`, with another person's tax code: a failed check."""
    user = bot.user(user_id)
    await answer_all(user, "/registrati", "continua", code)
    await user.press("Persona")
    events = await answer_all(user, MARIO["first"], MARIO["last"], GIULIA["tax"], "salta")
    assert "non corrispondono" in said(events)
    await user.send("/annulla")


async def test_erasure_with_the_code_typed_three_ways_leaves_no_code_and_no_telegram_id(
    bot: Bot, clock: FakeClock
) -> None:
    await mistype_identity(bot, OWNER, "UG100234")
    await mistype_identity(bot, STRANGER, "ug/100234")
    owner = await registered(bot)  # "UG-100234" as printed
    await answer_all(owner, "/accedi", "nessuno@example.it", WRONG_PASSWORD)  # an event of no profile
    await owner.send("/annulla")
    await login(owner)
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account is not None
    await answer_all(owner, "/cancella_profilo", PASSWORD)
    assert "cancellato" in said(await owner.press("Cancella il profilo"))

    rows = await audit_rows(bot.services.db)
    key = customer_code_key(MARIO["code"])
    assert not [r for r in rows if r[2] and customer_code_key(r[2]) == key], rows
    assert not [r for r in rows if r[3] == OWNER], rows
    # The profile's number keeps what happened, with no code and no Telegram account.
    mine = [r for r in rows if r[1] == account.id]
    assert {"registered", "login", "erased"} <= {r[0] for r in mine}
    assert all(r[2] is None and r[3] is None for r in mine)


async def test_a_check_in_flight_during_the_erasure_is_written_pseudonymised(
    database: Database, clock: FakeClock
) -> None:
    async with running_bot(database, clock) as bot:
        await registered(bot)
        services = bot.services
        account = await stores(services).accounts.get_by_email(MARIO_EMAIL)
        assert account is not None

        async def find(uow):  # type: ignore[no-untyped-def]
            return await uow.accounts.get_by_email(MARIO_EMAIL)

        # A stranger's guess is reserved before the erasure and recorded after it (its bcrypt check ran
        # meanwhile); another is recorded while the erasure's transaction is still open.
        first = await password_check.reserve(services, STRANGER, find, "unused", "login_failed")
        second = await password_check.reserve(services, STRANGER + 1, find, "unused", "login_failed")
        assert isinstance(first, password_check.Reservation) and isinstance(
            second, password_check.Reservation
        )
        async with services.uow() as uow:
            await uow.profiles.erase(account.id)
            late = asyncio.create_task(
                password_check.record_failure(
                    services, STRANGER + 1, second, "login_failed", "wrong password"
                )
            )
            await asyncio.sleep(0.2)  # it waits for the erasure's transaction
            await uow.commit()
        await late
        await password_check.record_failure(services, STRANGER, first, "login_failed", "wrong password")
        rows = await audit_rows(services.db)
        mine = [r for r in rows if r[1] == account.id]
        assert [r for r in mine if r[0] == "login_failed"], rows
        assert all(r[2] is None and r[3] is None for r in mine), mine
        # And a login against the erased profile's address now is a login to an unknown address.
        assert isinstance(
            await login_service.log_in(services, STRANGER + 2, MARIO_EMAIL, PASSWORD), InvalidCredentials
        )


async def test_the_export_names_other_telegram_accounts_only_as_another_account(bot: Bot) -> None:
    owner = await registered(bot)
    stranger = bot.user(STRANGER)
    await login(stranger, password=WRONG_PASSWORD)  # audited with the stranger's Telegram id
    await login(owner)
    events = await answer_all(owner, "/i_miei_dati", PASSWORD)
    files = [e for e in bot.api.events if type(e).__name__ == "DocumentSent" and e.chat_id == OWNER]
    assert files, [type(e).__name__ for e in events]
    document = json.loads(files[0].content)
    text = json.dumps(document, ensure_ascii=False)
    assert str(STRANGER) not in text
    assert "un altro account Telegram" in text
    assert str(OWNER) in text  # the customer's own account is theirs to see
    assert any("Ecco tutti i dati" in e.plain_text for e in events if isinstance(e, Sent))


async def test_support_erasure_also_pseudonymises(bot: Bot) -> None:
    await mistype_identity(bot, OWNER, "UG100234")
    await registered(bot)
    account = await stores(bot.services).accounts.get_by_email(MARIO_EMAIL)
    assert account is not None
    assert isinstance(await erasure.erase_profile(bot.services, account.id, by_support=True), Erased)
    rows = await audit_rows(bot.services.db)
    assert not [r for r in rows if r[2] is not None or r[3] == OWNER], rows


def test_the_cli_at_debug_writes_no_personal_data_to_its_log(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    env = {"DATABASE_URL": url, "LOG_LEVEL": "DEBUG", "UNOGAS_OPERATOR": "anna", "BCRYPT_ROUNDS": "4"}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "DATABASE_"))}, **env}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "unogas_bot", *args], env=env, capture_output=True, text=True, timeout=60
        )

    loaded = cli("customers", "demo")  # writes the demo customers: names and tax codes as SQL parameters
    assert loaded.returncode == 0 and MARIO["tax"] in loaded.stdout  # printed on purpose, not logged
    shown = cli("accounts", "show", MARIO["code"])
    logged = loaded.stderr + shown.stderr
    assert "DEBUG" in logged and "executing" in logged, "the commands logged the driver's calls at DEBUG"
    for personal in (MARIO["tax"], "Rossi", "Bianchi", GIULIA["tax"], "UG100234"):
        assert personal not in logged, personal
