"""One leader with a hot standby (bot/leader.py), with real `unogas-bot run` processes against the stand-in
served over HTTP: only one polls; kill -9 of the leader mid-registration and the standby answers within
10 s, the registration completing with one account; a leader cut off from its database stops before the
standby takes over; on SQLite a second `run` refuses in one line.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.ops.processkit import (
    ANSWER,
    EMAIL,
    MARIO,
    PASSWORD,
    QUESTION,
    SAVED,
    load_demo_customers,
    logged_at,
    new_token,
    postgres_database,
    proxied,
    query,
    run_bot,
    standin,
    wait_for,
)

USER = 4242
TAKEOVER_LIMIT = 10.0  # seconds, the issue's


def _first_half(stand_in: object, user: int = USER) -> None:
    """Registration up to the tax code (Passo 4 of 12)."""
    say = stand_in.say  # type: ignore[attr-defined]
    assert "continua" in say(user, "/registrati").lower()  # the privacy notice comes first
    assert "codice cliente" in say(user, "Continua", press=True).lower()
    say(user, MARIO["code"])
    say(user, "Persona", press=True)
    say(user, MARIO["first"])
    say(user, MARIO["last"])
    say(user, MARIO["tax"])


def _second_half(stand_in: object, user: int = USER) -> str:
    say = stand_in.say  # type: ignore[attr-defined]
    say(user, EMAIL)
    say(user, PASSWORD)
    say(user, PASSWORD)
    say(user, QUESTION)
    say(user, ANSWER)
    say(user, ANSWER)
    return str(say(user, "Salva", press=True))


@pytest.mark.postgres
@pytest.mark.slow
def test_the_standby_takes_over_mid_registration_within_10_s(tmp_path: Path) -> None:
    token = new_token()
    with postgres_database() as url, standin(token) as stand_in:
        load_demo_customers(url)
        with run_bot(tmp_path, "a", token, stand_in, url) as leader:
            leader.wait_role("leader")
            with run_bot(tmp_path, "b", token, stand_in, url) as standby:
                state = standby.wait_role("standby")
                assert state["status"] == 503 and not state["ready"]
                _first_half(stand_in)
                time.sleep(1.0)  # the standby has tried for the lock a few times meanwhile
                assert sum("standby:" in line for line in standby.log()) == 1, "said once"
                assert stand_in.status()["get_updates"]["conflicts"] == 0, "only the leader polled"
                assert standby.metric("unogas_leader") == 0

                leader.process.kill()  # SIGKILL: no goodbye, the lock goes with the session
                killed = time.monotonic()
                reply = stand_in.say(USER, "salta", wait=TAKEOVER_LIMIT)  # the phone question
                took = time.monotonic() - killed
                assert took < TAKEOVER_LIMIT
                assert "mail" in reply.lower(), f"the standby went on where the customer was: {reply!r}"
                assert _second_half(stand_in).startswith(SAVED)
                assert standby.wait_role("leader")["status"] == 200
                assert standby.metric("unogas_registrations_total") == 1
                assert stand_in.status()["get_updates"]["conflicts"] == 0
                assert standby.logged("leader: took over bot")
                assert standby.stop() == 0
                assert standby.log()[-1].endswith("stopped: conversations saved, leadership released")
        assert query(url, "SELECT count(*) FROM accounts") == 1
        print(f"takeover: first reply from the standby {took:.2f} s after kill -9")


def _when(stamp: str | None) -> datetime:
    assert stamp is not None
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_leader_cut_off_from_its_database_stops_before_the_standby_takes_over(tmp_path: Path) -> None:
    token = new_token()
    with postgres_database() as url, standin(token) as stand_in, proxied(url) as (proxied_url, proxy):
        load_demo_customers(url)
        with run_bot(tmp_path, "a", token, stand_in, proxied_url) as leader:
            leader.wait_role("leader")
            with run_bot(tmp_path, "b", token, stand_in, url) as standby:
                standby.wait_role("standby")
                assert "continua" in stand_in.say(USER, "/registrati").lower()  # the privacy notice
                assert "codice cliente" in stand_in.say(USER, "Continua", press=True).lower()
                proxy.blackhole()  # the network to the database silently drops everything

                def outage_seen() -> dict[str, object] | None:
                    state = leader.ready()
                    return state if state is not None and not state["database"] else None

                state = wait_for("the leader's /readyz to show the outage", outage_seen, 5)
                assert state["status"] == 503 and not state["ready"]
                assert leader.process.wait(timeout=15) != 0, "fenced: it stopped"
                fenced = [line for line in leader.log() if "fenced:" in line]
                assert len(fenced) == 1 and "lost the leadership" in fenced[0], leader.log()
                standby.wait_role("leader", seconds=15)
                assert _when(logged_at(leader, "fenced:")) < _when(logged_at(standby, "leader: took over")), (
                    "the old leader stopped before the standby could take over"
                )
                reply = stand_in.say(USER, MARIO["code"], wait=TAKEOVER_LIMIT)
                assert "persona" in reply.lower() or "azienda" in reply.lower(), reply
                assert stand_in.status()["get_updates"]["conflicts"] == 0
                assert standby.stop() == 0


def test_a_second_run_on_the_same_sqlite_file_refuses_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.ops.processkit import _env

    token = new_token()
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    with standin(token) as stand_in, run_bot(tmp_path, "a", token, stand_in, url) as first:
        first.wait_role("leader")
        env = _env({"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": stand_in.api_url})
        env["DATABASE_URL"] = url
        second = subprocess.run(
            [sys.executable, "-m", "unogas_bot", "run"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1, second.stderr
        assert second.stderr.startswith("unogas-bot: cannot start: another unogas-bot run is using ")
        assert "only one may run on an SQLite database" in second.stderr
        first.check_alive()
        assert stand_in.status()["get_updates"]["conflicts"] == 0
        assert first.stop() == 0
