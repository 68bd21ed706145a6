"""kill -9 of the bot between the commit of a registration and the publication of its event (issue 24): real
`unogas-bot run` processes on the HTTP stand-in. The first leads with a broker that refuses (AMQP_URL on a
closed port), so the event is committed and cannot be published; it is killed; the second, with the real
broker, publishes it with the same id. Skipped, saying why, without RabbitMQ (PostgreSQL: without it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.kit.amqpkit import AMQP_URL, broker_problem, declare_tap, delete_names, new_names, read_tap
from tests.ops.processkit import (
    ANSWER,
    EMAIL,
    MARIO,
    PASSWORD,
    QUESTION,
    SAVED,
    load_demo_customers,
    new_token,
    postgres_database,
    query,
    run_bot,
    standin,
    wait_for,
)

USER = 4343
REFUSING = "amqp://guest:guest@127.0.0.1:1/"


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    else:
        with postgres_database() as url:
            yield url


def one(url: str, sql: str) -> object:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split(":///", 1)[1]) as conn:
            row = conn.execute(sql).fetchone()
            return None if row is None else row[0]
    return query(url, sql)


def register(stand_in: object) -> str:
    say = stand_in.say  # type: ignore[attr-defined]
    say(USER, "/registrati")
    say(USER, "Continua", press=True)
    say(USER, MARIO["code"])
    say(USER, "Persona", press=True)
    for text in (MARIO["first"], MARIO["last"], MARIO["tax"], "salta", EMAIL, PASSWORD, PASSWORD):
        say(USER, text)
    for text in (QUESTION, ANSWER, ANSWER):
        say(USER, text)
    return str(say(USER, "Salva", press=True))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_event_committed_before_kill_9_is_published_after_the_restart_with_its_id(
    backend: str, tmp_path: Path
) -> None:
    problem = broker_problem()
    if problem:
        pytest.skip(problem)
    names = new_names()
    token = new_token()
    env = {"EVENTS_NAME_PREFIX": names.prefix, "EVENTS_SHARE_CREDENTIALS": "false"}
    try:
        declare_tap(names)
        with database(backend, tmp_path) as url, standin(token) as stand_in:
            load_demo_customers(url)
            with run_bot(tmp_path, "a", token, stand_in, url, AMQP_URL=REFUSING, **env) as first:
                first.wait_role("leader")
                assert register(stand_in).startswith(SAVED)
                pending = "SELECT event_id FROM outbox_events WHERE sent_at IS NULL"
                event_id = one(url, pending)
                assert event_id is not None
                wait_for(
                    "the relay's one line", lambda: first.logged("account events wait in the outbox"), 10
                )
                first.process.kill()  # SIGKILL: between the commit and the publication
                first.process.wait(10)
                assert sum("events relay:" in line for line in first.log()) == 1, "said once, not per retry"
            with run_bot(tmp_path, "b", token, stand_in, url, AMQP_URL=AMQP_URL, **env) as second:
                second.wait_role("leader")
                sent = "SELECT count(*) FROM outbox_events WHERE sent_at IS NOT NULL"
                wait_for("the event to be confirmed", lambda: one(url, sent) == 1, 20)
                # The line is written after the drain that marked the event: wait for it too.
                wait_for(
                    "the relay's connected line",
                    lambda: second.logged("events relay: connected to the broker at"),
                    10,
                )
                assert second.stop() == 0
        (message,) = read_tap(names)
        assert message.message_id == event_id
        assert message.routing_key == "it.unogas.account.registered"
        assert f'"id":"{event_id}"' in message.body.decode()
    finally:
        delete_names(names)
