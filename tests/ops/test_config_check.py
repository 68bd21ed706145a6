"""Operations (issue 22, item 8): `config check` names every misconfigured setting in one line without
starting; `run` fails at once, naming the setting, on a malformed Bot API URL, a database it cannot reach
or a metrics port it cannot listen on; `unogas_build_info{version}`; the alert rules pass promtool."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from unogas_bot.cli.checks import all_problems
from unogas_bot.offline import http

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-config"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "METRICS_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "unogas_bot", *args],
        env={**full, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


async def test_every_problem_is_one_line_naming_its_setting(tmp_path: Path, busy_port: int) -> None:
    port = _closed_port()
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/test",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081",
        "BCRYPT_ROUNDS": "99",
        "METRICS_PORT": str(busy_port),
    }
    shown = [str(p) for p in await all_problems(env, network=False)]
    assert shown == [
        "TELEGRAM_API_BASE_URL: must end in /bot (the token is appended to it), such as "
        "http://127.0.0.1:8081/bot, not 'http://127.0.0.1:8081'",
        "BCRYPT_ROUNDS: must be between 4 and 31, not 99",
        f"DATABASE_URL: cannot reach the database at 127.0.0.1:{port}: connection refused "
        "(is the server running, on that port?)",
        f"METRICS_PORT: port {busy_port} on 127.0.0.1 is already in use by another process",
    ]
    migrated = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    assert _cli({"DATABASE_URL": migrated}, "db", "upgrade").returncode == 0
    unknown = await all_problems(
        {
            "DATABASE_URL": migrated,
            "METRICS_PORT": "9999",
            "METRICS_HOST": "nohost.invalid",
        },
        network=False,
    )
    assert [str(p) for p in unknown] == [
        "METRICS_HOST: 'nohost.invalid' is no address or name this machine can listen on"
    ]
    foreign = await all_problems(
        {"DATABASE_URL": migrated, "METRICS_PORT": "9999", "METRICS_HOST": "192.0.2.7"},
        network=False,
    )
    assert [str(p) for p in foreign] == ["METRICS_HOST: '192.0.2.7' is not an address of this machine"]


async def test_the_schema_is_checked_without_being_changed(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    url = f"sqlite+aiosqlite:///{path}"
    (problem,) = await all_problems({"DATABASE_URL": url}, network=False)
    assert (
        str(problem)
        == f"DATABASE_URL: the SQLite file {path} does not exist yet: `run` or `db upgrade` creates it"
    )
    assert not path.exists()
    path.touch()
    (problem,) = await all_problems({"DATABASE_URL": url}, network=False)
    assert re.search(r"has no schema yet, the code needs \w+: run `unogas-bot db upgrade`", str(problem))
    assert _cli({"DATABASE_URL": url}, "db", "upgrade").returncode == 0
    assert await all_problems({"DATABASE_URL": url}, network=False) == []


async def test_the_token_is_asked_of_the_bot_api(tmp_path: Path) -> None:
    standin = http.StandInHttp(token=TOKEN)
    server, port = http.start(standin, "127.0.0.1", 0)
    try:
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        assert _cli({"DATABASE_URL": url}, "db", "upgrade").returncode == 0
        base = {"DATABASE_URL": url, "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}/bot"}
        assert await all_problems({**base, "TELEGRAM_BOT_TOKEN": TOKEN}) == []
        (refused,) = await all_problems({**base, "TELEGRAM_BOT_TOKEN": "999:WRONG"})
        assert str(refused).startswith(
            f"TELEGRAM_BOT_TOKEN: refused by the Bot API at http://127.0.0.1:{port}/bot"
        )
        (missing,) = await all_problems(base)
        assert str(missing) == "TELEGRAM_BOT_TOKEN: not set: `run` needs it (the console does not)"
    finally:
        await http.stop(server, standin)
    closed = {
        **base,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{_closed_port()}/bot",
    }
    (silent,) = await all_problems(closed)
    assert str(silent).startswith(
        "TELEGRAM_API_BASE_URL: the Bot API at http://127.0.0.1:"
    ) and "did not answer" in str(silent)


def test_the_command_prints_one_line_per_problem_and_fails(tmp_path: Path) -> None:
    run = _cli(
        {"BCRYPT_ROUNDS": "x", "LOG_LEVEL": "LOUD", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/n.db"},
        "config",
        "check",
        "--no-network",
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "BCRYPT_ROUNDS: must be a whole number, not 'x'"
    assert lines[1] == "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'"
    assert lines[-1] == "3 problem(s) in the configuration"
    good = f"sqlite+aiosqlite:///{tmp_path}/g.db"
    assert _cli({"DATABASE_URL": good}, "db", "upgrade").returncode == 0
    run = _cli({"DATABASE_URL": good}, "config", "check", "--no-network")
    assert run.returncode == 0 and run.stdout.startswith("the configuration is usable"), run.stdout


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081"},
            "unogas-bot: TELEGRAM_API_BASE_URL must end in /bot",
        ),
        (
            {"DATABASE_URL": "postgresql://postgres@127.0.0.1:{closed}/test"},
            "unogas-bot: cannot start: DATABASE_URL: cannot reach the database at 127.0.0.1:{closed}: "
            "connection refused",
        ),
        (
            {"METRICS_PORT": "{busy}"},
            "unogas-bot: cannot start: METRICS_PORT: port {busy} on 127.0.0.1 is already in use",
        ),
    ],
)
def test_run_fails_at_once_naming_the_setting(
    tmp_path: Path, busy_port: int, extra: dict[str, str], expected: str
) -> None:
    closed = _closed_port()
    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/r.db"}
    env.update({k: v.format(closed=closed, busy=busy_port) for k, v in extra.items()})
    started = time.monotonic()
    run = _cli(env, "run", timeout=30)
    assert run.returncode == 1 and time.monotonic() - started < 15
    assert run.stderr.splitlines()[-1].startswith(expected.format(closed=closed, busy=busy_port)), run.stderr
    assert "Traceback" not in run.stderr


def test_build_info_names_the_version() -> None:
    import importlib.metadata

    from unogas_bot.bot.metrics import exposition

    body = exposition()[0].decode()
    version = importlib.metadata.version("unogas-bot")
    assert f'unogas_build_info{{version="{version}"}} 1.0' in body


def test_the_alert_rules_watch_metrics_the_bot_has() -> None:
    rules = (ROOT / "deploy" / "alerts.yml").read_text(encoding="utf-8")
    source = (ROOT / "unogas_bot" / "bot" / "metrics.py").read_text(encoding="utf-8")
    names = set(re.findall(r"\bunogas_[a-z_]+", rules)) - {"unogas_bot"}
    assert {"unogas_leader", "unogas_database_errors_total", "unogas_bcrypt_queue_depth"} <= names
    for name in names:
        stem = name.removeprefix("unogas_").removesuffix("_total")
        assert f'f"{{PREFIX}}_{stem}"' in source, name
    for alert in (
        "UnogasBotDown",
        "UnogasNoLeader",
        "UnogasDatabaseErrors",
        "UnogasLockoutSpike",
        "UnogasBcryptQueue",
        "UnogasOutboxStuck",
        "UnogasCustomerEventsDeadLettered",
    ):
        assert f"alert: {alert}\n" in rules


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="no promtool here (Debian package prometheus: scripts/_env.sh installs it where it runs as root)",
)
def test_promtool_checks_and_tests_the_alert_rules() -> None:
    deploy = ROOT / "deploy"
    check = subprocess.run(
        ["promtool", "check", "rules", str(deploy / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0 and "SUCCESS: 10 rules found" in check.stdout, check.stdout + check.stderr
    test = subprocess.run(
        ["promtool", "test", "rules", str(deploy / "alerts.test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr
