"""What an operator sees of one real `unogas-bot run` (SQLite, the stand-in over HTTP, LOG_FORMAT=json at
DEBUG) through a whole registration: /healthz, /readyz, /metrics counting it with no personal data in any
label, and a log whose every line is a JSON object holding no secret. In process: the metrics' sources
(committed audit events only) and the JSON formatter.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from prometheus_client import REGISTRY

from tests.ops.processkit import (
    MARIO,
    SAVED,
    SECRETS,
    load_demo_customers,
    new_token,
    run_bot,
    standin,
)
from tests.ops.test_failover import USER, _first_half, _second_half
from unogas_bot.bot import metrics
from unogas_bot.security.json_logs import LOG_CONTEXT, JsonFormatter, LogContext

PHONE = "347 123 4567"


def test_one_process_health_metrics_and_json_logs(tmp_path: Path) -> None:
    token = new_token()
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    load_demo_customers(url)
    json_logs = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    with standin(token) as stand_in, run_bot(tmp_path, "bot", token, stand_in, url, **json_logs) as bot:
        bot.wait_role("leader")
        health = bot.get("/healthz")
        assert health is not None and (health.status_code, health.text) == (200, "ok\n")
        assert bot.ready() == {
            "status": 200,
            "ready": True,
            "role": "leader",
            "database": True,
            "bot_api": True,
        }

        _first_half(stand_in)
        stand_in.say(USER, PHONE)
        assert _second_half(stand_in).startswith(SAVED)

        exposition = bot.get("/metrics")
        assert exposition is not None and exposition.status_code == 200
        assert exposition.headers["Content-Type"].startswith("text/plain")
        text = exposition.text
        (tmp_path / "metrics.txt").write_text(text)  # a sample, for the curious
        assert bot.metric("unogas_registrations_total") == 1
        assert bot.metric("unogas_leader") == 1
        assert _sample(text, 'unogas_updates_total{kind="message"}') >= 12
        # Buttons pressed: the privacy notice's Continua, Persona and Salva.
        assert _sample(text, 'unogas_updates_total{kind="callback_query"}') == 3
        assert _sample(text, 'unogas_bcrypt_seconds_count{op="hash"}') >= 2
        assert _sample(text, "unogas_persistence_flush_seconds_count") >= 1
        assert _sample(text, "unogas_reply_seconds_count") >= 14
        assert _sample(text, 'unogas_conversations_in_flight{flow="registration"}') == 0
        assert _sample(text, 'unogas_bot_api_requests_total{method="sendMessage",outcome="ok"}') >= 14
        personal = [
            *SECRETS,
            PHONE,
            "3471234567",
            MARIO["first"],
            MARIO["last"],
            MARIO["code"],
            str(USER),
        ]
        assert not [p for p in personal if p.lower() in text.lower()], "no personal data in /metrics"
        assert token.partition(":")[2] not in text
        assert bot.stop() == 0

    lines = bot.log()
    records = [json.loads(line) for line in lines]  # each line one JSON object, or this fails
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    ours = [r for r in records if r["logger"].startswith("unogas_bot")]  # libraries may log after it
    assert ours[-1]["message"] == "unogas-bot stopped: conversations saved, leadership released"
    in_flow = [r for r in records if r.get("flow") == "registration" and "update_id" in r and "step" in r]
    assert in_flow, "records made while handling an update say which update, flow and step"
    log_text = "\n".join(lines).lower()
    leaked = [s for s in (*SECRETS, token.partition(":")[2]) if s.lower() in log_text]
    assert not leaked, f"in the JSON log: {leaked}"


def _sample(exposition: str, series: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in /metrics")


def test_the_json_formatter_writes_one_object_a_line_with_the_update_context() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("unogas_bot.x", logging.ERROR, __file__, 1, "update %s failed", (7,), None)
    token = LOG_CONTEXT.set(LogContext(7, "registration", "email"))
    try:
        try:
            raise ValueError(" ".join(["the customer typed", *SECRETS]))
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
        line = formatter.format(record)
    finally:
        LOG_CONTEXT.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "unogas_bot.x", "update 7 failed")
    assert (entry["update_id"], entry["flow"], entry["step"]) == (7, "registration", "email")
    assert "ValueError" in entry["exception"] and "Lanterna" not in entry["exception"], "types, not texts"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", entry["time"])
    plain = json.loads(formatter.format(logging.LogRecord("x", logging.INFO, __file__, 1, "è ok", (), None)))
    assert plain["message"] == "è ok" and "update_id" not in plain


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_audit_events_count_only_when_committed() -> None:
    """The counting of watch_database, on a bare SQLite database: an audit event counts once its
    transaction commits (a plain transaction or a unit of work), never after a rollback; and watching
    leaves the Lookups on their one-call path (no cursor event is listened to)."""
    import asyncio

    from storage.accounts import Accounts
    from storage.db import Database, Lookup
    from storage.unit_of_work import UnitOfWork

    async def go(db: Database) -> None:
        await db.upgrade()
        metrics.watch_database(db)
        metrics.watch_database(db)  # once per database, however often asked
        async with db.transaction() as session:
            await Accounts(session).add_event("registered")
            await Accounts(session).add_event("login_locked")
            await Accounts(session).add_event("unlocked")  # counted nowhere
        try:
            async with db.transaction() as session:
                await Accounts(session).add_event("registered")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        async with UnitOfWork(db) as uow:
            await uow.accounts.add_event("registered")  # left without commit: rolled back
        async with UnitOfWork(db) as uow:
            await uow.accounts.add_event("recovery_identity_failed")
            await uow.commit()
        async with db.read() as conn:
            assert not Lookup._watched(conn), "a cursor event would slow every look-up"
        await db.dispose()

    before = (
        _value("unogas_registrations_total"),
        _value("unogas_lockouts_total", kind="login_address"),
        _value("unogas_identity_check_failures_total", flow="recovery"),
    )
    asyncio.run(go(Database("sqlite+aiosqlite:///:memory:")))
    after = (
        _value("unogas_registrations_total"),
        _value("unogas_lockouts_total", kind="login_address"),
        _value("unogas_identity_check_failures_total", flow="recovery"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]


def test_error_kinds_are_a_fixed_set() -> None:
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    class Cancelled(Exception):
        sqlstate = "57014"

    assert metrics.database_error_kind(TimeoutError()) == "timeout"
    assert metrics.database_error_kind(PoolTimeout("no connection")) == "timeout"
    assert metrics.database_error_kind(OperationalError("x", {}, Cancelled())) == "timeout"
    assert metrics.database_error_kind(ConnectionRefusedError()) == "connection"
    assert metrics.database_error_kind(ValueError("customer UG-1")) == "error"
    assert metrics.update_kind(object()) == "other"
