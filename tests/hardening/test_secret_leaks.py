"""Secret-leak scan: after registrations, logins and recoveries with every logger at DEBUG, no password or
security answer (nor an obvious transformation of one) is in any table, in the log, in an error report or
in anything the bot wrote in the chat.

Tables are reflected from the database, so tables added later are scanned too. Updates go through PTB's
update queue, as polling and the webhook deliver them, so the library's own logging of updates runs too.
The secrets differ from the catalogue's examples, which the bot shows on purpose. Every update goes through
the update inbox first, as `run` delivers it: its rows are scanned while the updates wait in it, and on
SQLite the files (WAL included) keep whatever was ever written there.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData
from telegram import Update

from storage.db import Database
from tests.conftest import FakeClock
from tests.kit.botkit import FERRARO, MARIO, Bot, answer_all, running_bot
from tests.kit.hardkit import ErrorSpy, dump_database, find_leaks, secret_variants
from unogas_bot import rules
from unogas_bot.bot.wiring import build_application
from unogas_bot.config import Settings
from unogas_bot.offline import Sent
from unogas_bot.security import redaction
from unogas_bot.service.context import Services

EMAIL = "mario.rossi@example.it"
COMPANY_EMAIL = "amministrazione@ferraro.example.it"
QUESTION = "Qual era il soprannome di mio nonno?"
PASSWORD = "Ombrello giallo 314"
ANSWER = "Pàstà Frollà Ùnica"  # accents and capitals: the stored form is normalised
ANSWER_TYPED_AGAIN = "  pasta FROLLA unica "
COMPANY_PASSWORD = "Cammello dorato sul tetto 58"
COMPANY_ANSWER = "Zucchero filato"
MISMATCHED = "Ombrello verde 315"  # a first password whose repetition differed
PERSONAL = "Mario Rossi forever 7"  # refused: it contains the name
WRONG_PASSWORD = "Ombrello viola 271"
UNKNOWN_PASSWORD = "Segreto di nessuno 99"
LONG_PASSWORD = "Lungo segreto " + "ž" * 60  # more than bcrypt's 72 bytes
WRONG_ANSWER = "Pasta sfoglia"
NEW_PASSWORD = "Girandola azzurra 2031"
NEW_MISMATCH = "Girandola rossa 2032"
FAILING_PASSWORD = "Temporale estivo 1234"  # typed while the handler fails with an error quoting it
OWN_NEW_PASSWORD = "Lampione storto 4471"  # /cambia_password
OWN_WRONG_CURRENT = "Lampione dritto 4470"
OWN_ANSWER = "Torta di mele"  # /cambia_domanda

SECRETS = (
    PASSWORD,
    ANSWER,
    ANSWER_TYPED_AGAIN,
    COMPANY_PASSWORD,
    COMPANY_ANSWER,
    MISMATCHED,
    PERSONAL,
    WRONG_PASSWORD,
    UNKNOWN_PASSWORD,
    LONG_PASSWORD,
    WRONG_ANSWER,
    NEW_PASSWORD,
    NEW_MISMATCH,
    FAILING_PASSWORD,
    OWN_NEW_PASSWORD,
    OWN_WRONG_CURRENT,
    OWN_ANSWER,
)
LOGGERS = (
    "",
    "telegram",
    "httpx",
    "httpcore",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "aiosqlite",
    "asyncio",
)


def through_the_update_queue(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, waiting: list[tuple[str, str, str]]
) -> None:
    """Deliver updates as polling and the webhook do: written to the update inbox, then onto
    `update_queue`, fetched by the Application. What the inbox holds while an update waits (its sealed
    payload, dropped once handled) goes into `waiting`, so the scan sees it too."""
    sim, app = bot.sim, bot.app
    inbox = app.inbox  # type: ignore[attr-defined]
    tables = MetaData()  # reflected at the first update, read again at each (the schema does not change)

    async def process(data: dict[str, Any]) -> None:
        data.setdefault("update_id", next(sim._update_ids))
        update = Update.de_json(data, app.bot)
        assert await inbox.admit([update], [data]), "a new update"
        waiting.extend(row for row in await dump_database(bot.services.db, tables) if row[0] == "bot_inbox")
        await app.update_queue.put(update)
        await app.update_queue.join()  # task_done() comes once the update is handled

    monkeypatch.setattr(sim, "process", process)


async def register(bot: Bot, user_id: int) -> None:
    user = bot.user(user_id)
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", EMAIL)
    await answer_all(user, MISMATCHED, PASSWORD)  # the pair differs: asked again
    await answer_all(user, PERSONAL, PASSWORD, PASSWORD, QUESTION, ANSWER, ANSWER_TYPED_AGAIN)
    events = await user.press("Salva")
    assert "correttamente salvate" in _said(events)

    company = bot.user(user_id + 1, language_code="en")
    await answer_all(company, "/register", "continue", FERRARO["code"])
    await company.press("Business")
    await answer_all(company, FERRARO["company"], FERRARO["tax"], "skip", COMPANY_EMAIL)
    await answer_all(company, COMPANY_PASSWORD, COMPANY_PASSWORD, QUESTION, COMPANY_ANSWER, COMPANY_ANSWER)
    assert "has been saved" in _said(await company.send("save"))


async def log_in_and_out(bot: Bot, user_id: int) -> None:
    user = bot.user(user_id)
    await answer_all(user, "/accedi", EMAIL, WRONG_PASSWORD)
    await user.send(LONG_PASSWORD)
    await user.send("/annulla")
    await answer_all(user, "/accedi", "nessuno@example.it", UNKNOWN_PASSWORD)
    await user.send("/annulla")
    events = await answer_all(user, "/accedi", EMAIL, PASSWORD)
    assert "Bentornat" in _said(events) or "Mario Rossi" in _said(events)
    await user.send("/profilo")
    await user.send("/esci")


async def recover(bot: Bot, user_id: int) -> None:
    user = bot.user(user_id)
    await answer_all(user, "/recupera_password", EMAIL, MARIO["code"], WRONG_ANSWER, ANSWER)
    await answer_all(user, "Mario Rossi 1975")  # refused: it holds the customer's name
    await answer_all(user, NEW_PASSWORD, NEW_MISMATCH)  # the pair differs
    events = await answer_all(user, NEW_PASSWORD, NEW_PASSWORD)
    assert "/accedi" in _said(events)
    await answer_all(user, "/accedi", EMAIL, NEW_PASSWORD)


async def fail_while_holding_a_secret(bot: Bot, user_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error whose message quotes the password: the error report must not repeat it."""
    user = bot.user(user_id)
    await answer_all(user, "/recupera_password", EMAIL, MARIO["code"], ANSWER)

    def boom(text: str, personal: Any = ()) -> str:
        raise RuntimeError(f"could not check {text!r}")

    with monkeypatch.context() as patch:
        patch.setattr(rules.password, "validate", boom)
        events = await user.send(FAILING_PASSWORD)
    assert "problema" in _said(events)  # the customer is told to retry
    await user.send("/annulla")


async def use_every_own_data_form(bot: Bot, user_id: int) -> None:
    """Every self-service form of the logged-in customer (the company's profile), slips included: the
    current password sent twice, the new password typed as the question; then the erasure."""
    user = bot.user(user_id)
    await answer_all(user, "/accedi", COMPANY_EMAIL, COMPANY_PASSWORD)
    await answer_all(user, "/cambia_password", OWN_WRONG_CURRENT, COMPANY_PASSWORD, COMPANY_PASSWORD)
    events = await answer_all(user, OWN_NEW_PASSWORD, OWN_NEW_PASSWORD)
    assert "password" in _said(events).lower()
    await answer_all(
        user, "/cambia_email", OWN_NEW_PASSWORD, OWN_NEW_PASSWORD, "contabilita@ferraro.example.it"
    )
    await answer_all(user, "/cambia_telefono", OWN_NEW_PASSWORD, OWN_NEW_PASSWORD, "+39 347 765 4321")
    await answer_all(user, "/cambia_domanda", OWN_NEW_PASSWORD, OWN_NEW_PASSWORD, QUESTION)
    await answer_all(user, OWN_ANSWER, OWN_ANSWER, OWN_ANSWER)
    await answer_all(user, "/i_miei_dati", OWN_NEW_PASSWORD, OWN_NEW_PASSWORD)
    await answer_all(user, "/cancella_profilo", OWN_NEW_PASSWORD, OWN_NEW_PASSWORD)
    assert "cancellato" in _said(await user.press("Cancella il profilo"))


def _files(folder: Path) -> str:
    return b"".join(p.read_bytes() for p in folder.glob("*.db*")).decode("utf-8", "replace")


def _said(events: list[object]) -> str:
    return "\n".join(e.plain_text for e in events if isinstance(e, Sent))


async def test_no_secret_reaches_tables_logs_error_reports_or_chat(
    database: Database,
    clock: FakeClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    waiting: list[tuple[str, str, str]] = []
    # As in production: conversations kept in the database, every update through the inbox.
    async with running_bot(database, clock, inbox=secrets.token_bytes(32)) as bot:
        spy = ErrorSpy(bot.app)
        through_the_update_queue(bot, monkeypatch, waiting)
        await register(bot, 9101)
        await log_in_and_out(bot, 9103)
        await recover(bot, 9104)
        await fail_while_holding_a_secret(bot, 9105, monkeypatch)
        await use_every_own_data_form(bot, 9106)
        assert [type(e).__name__ for e in spy.errors] == ["RuntimeError"]  # the one error we caused
        chat = [e.text for e in bot.api.events if isinstance(e, Sent)]
        memory = repr(dict(bot.app.user_data)) + repr(dict(bot.app.chat_data)) + repr(bot.app.bot_data)
    rows = await dump_database(database)

    tables = {table for table, _, _ in rows}
    assert {"accounts", "customers", "audit_events", "bot_inbox"} <= tables, "the scan reads every table"
    payloads = [value for _, column, value in waiting if column == "payload"]
    assert len(payloads) > 40, "the scan read the inbox while updates waited in it, payloads included"
    rows += waiting
    assert any("$2b$" in value for _, _, value in rows), "the scan reads the hash columns"
    assert any("Processing update" in r.getMessage() for r in caplog.records), "PTB's DEBUG logs ran"
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), "SQL was logged"
    places: list[tuple[str, str]] = [(f"table {t}.{c}", v) for t, c, v in rows]
    places += [(f"log record {r.name}", r.getMessage()) for r in caplog.records]
    places.append(("the formatted log (tracebacks included)", caplog.text))
    places += [("a message to a customer", text) for text in chat]
    places.append(("the bot's memory", memory))
    if database.dialect == "sqlite":
        places.append(("the SQLite files (WAL included)", _files(tmp_path)))
    leaks = find_leaks(places, secret_variants(*SECRETS))
    assert not leaks, "\n".join(leaks[:10])


def test_the_scan_finds_a_planted_secret() -> None:
    """The scanner itself: a transformed secret in any place is found."""
    places = [("table accounts.security_question", f"domanda {rules.answer.normalize(ANSWER)}?")]
    assert find_leaks(places, secret_variants(ANSWER))
    assert find_leaks([("log", PASSWORD.upper())], secret_variants(PASSWORD))
    assert not find_leaks([("log", "Ombrello")], secret_variants(PASSWORD))


def test_library_log_records_keep_their_wording_but_not_the_text(caplog: pytest.LogCaptureFixture) -> None:
    """What PTB and HTTP libraries log at DEBUG, as in polling mode (getUpdates results, request bodies)."""
    redaction.install()
    caplog.set_level(logging.DEBUG)
    update = {"update_id": 7, "message": {"text": PASSWORD}}
    bot_log, http_log = logging.getLogger("telegram.Bot"), logging.getLogger("httpx")
    bot_log.debug("Call to Bot API endpoint `%s` finished with return value `%s`", "getUpdates", [update])
    bot_log.debug("Received data: %(data)s", {"data": update})
    bot_log.debug({"text": PASSWORD})
    logging.getLogger("telegram.ext.Updater").warning("Error: %s", RuntimeError(PASSWORD))
    http_log.info(
        'HTTP Request: %s %s "%s"', "POST", "https://api.telegram.org/bot123:AbC-xyz/getUpdates", 200
    )
    logged = [r.getMessage() for r in caplog.records]
    assert logged[0] == "Call to Bot API endpoint `getUpdates` finished with return value `<list>`"
    assert "getUpdates" in logged[0] and all(PASSWORD not in line for line in logged)
    assert logged[3] == "Error: RuntimeError"
    assert "bot<token>/getUpdates" in logged[4] and "AbC-xyz" not in logged[4]
    redaction.install()  # idempotent: one filter per logger
    assert sum(isinstance(f, redaction.RedactPayloads) for f in bot_log.filters) == 1


def test_the_bot_token_stays_out_of_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    """PTB logs the Bot API URL, token included, while the Application is being built."""
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        for kind in (redaction.RedactPayloads, redaction.MaskToken):  # as in a fresh process
            for installed in [f for f in logger.filters if isinstance(f, kind)]:
                logger.removeFilter(installed)
    caplog.set_level(logging.DEBUG)
    token = "123456:SecretTokenXYZ"
    settings = Settings(telegram_token=token, bcrypt_rounds=4, hash_workers=1)
    services = Services.create(settings, Database("sqlite+aiosqlite:///:memory:"))
    try:
        build_application(services)
    finally:
        services.hasher.close()
    assert any("Bot API URL" in r.getMessage() for r in caplog.records), "PTB logged the URL"
    assert "SecretTokenXYZ" not in caplog.text


def test_sql_parameters_stay_out_of_the_driver_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    redaction.install()
    caplog.set_level(logging.DEBUG, logger="aiosqlite")
    logging.getLogger("aiosqlite").debug("executing %s", ("INSERT ...", ("mario.rossi@example.it",)))
    assert "mario.rossi@example.it" not in caplog.text and "executing" in caplog.text
