"""`config check` and `run`'s start checks under the operator's likely mistakes (issue 22, item 8: found by
the attacks on them): the token pasted into the Bot API URL is never printed; a bad value is one problem,
not a second one about the default put in its place; a SQLite file in a missing folder is not promised to
be created; a token of the wrong shape fails at once; a database that never answers says so."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from storage.db import Database
from tests.ops.test_config_check import _cli
from unogas_bot.cli.checks import all_problems, port_problem
from unogas_bot.cli.common import CliError, with_database
from unogas_bot.config import Settings

TOKEN = "123456:SECRET-token_x"


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (f"http://127.0.0.1:8081/bot{TOKEN}", "SECRET-token_x"),
        (f"http://127.0.0.1:8081/bot{TOKEN}/", "SECRET-token_x"),
        ("http://anna:PASSW0RD@127.0.0.1:8081/bot", "PASSW0RD"),
    ],
)
async def test_the_bot_api_url_is_never_printed_with_a_token_or_password_in_it(
    tmp_path: Path, url: str, secret: str
) -> None:
    env = {"TELEGRAM_API_BASE_URL": url, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    problems = [str(p) for p in await all_problems(env, network=False)]
    assert problems and problems[0].startswith("TELEGRAM_API_BASE_URL: ")
    assert not any(secret in problem for problem in problems), problems
    run = _cli({**env, "TELEGRAM_BOT_TOKEN": TOKEN}, "run", timeout=30)
    assert run.returncode == 1 and secret not in run.stderr and "Traceback" not in run.stderr, run.stderr
    if "bot1" in url:
        assert "the token is appended to it: leave it out of the URL" in problems[0]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("DATABASE_URL", "garbage"),
        ("DATABASE_URL", "mysql://root:S3cret@127.0.0.1/db"),
        ("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081"),
    ],
)
async def test_a_bad_value_is_one_problem_not_a_second_about_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    """A DATABASE_URL that cannot be read was checked again as the default SQLite file ("unogas.db does not
    exist yet"), a bad TELEGRAM_API_BASE_URL as Telegram's own address ("did not answer")."""
    monkeypatch.chdir(tmp_path)  # where the default SQLite file would be
    good = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert _cli({"DATABASE_URL": good}, "db", "upgrade").returncode == 0
    env = {"DATABASE_URL": good, "TELEGRAM_BOT_TOKEN": TOKEN, setting: value}
    problems = [str(p) for p in await all_problems(env, network=setting == "TELEGRAM_API_BASE_URL")]
    assert len(problems) == 1 and problems[0].startswith(f"{setting}: "), problems
    assert "S3cret" not in problems[0]


async def test_a_sqlite_file_in_a_missing_folder_is_not_promised_to_be_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'bot.db'}"
    (problem,) = await all_problems({"DATABASE_URL": url}, network=False)
    assert str(problem) == (
        f"DATABASE_URL: the folder {tmp_path / 'no' / 'such'} of the SQLite file does not exist: "
        "create it (neither `run` nor `db upgrade` does)"
    )
    run = _cli({"DATABASE_URL": url, "TELEGRAM_BOT_TOKEN": TOKEN}, "run", timeout=30)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[-1].startswith("unogas-bot: cannot start: DATABASE_URL: the folder"), (
        run.stderr
    )


@pytest.mark.parametrize(
    "token", ["abc", "123456:SECRET with space", "123456:", ":SECRETxyz", "bot123456:SECRET"]
)
def test_a_token_of_the_wrong_shape_fails_at_once_and_is_not_printed(tmp_path: Path, token: str) -> None:
    """Telegram's tokens are `<bot id>:<letters, digits, _ and ->`; another value was retried against the
    Bot API for a minute and a half."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    env = {"DATABASE_URL": url, "TELEGRAM_BOT_TOKEN": token}
    started = time.monotonic()
    run = _cli(env, "run", timeout=60)
    assert run.returncode == 1 and time.monotonic() - started < 15
    assert run.stderr.splitlines()[-1] == (
        "unogas-bot: TELEGRAM_BOT_TOKEN must look like a bot token from @BotFather: the bot's number, a "
        "colon, then letters, digits, _ and -"
    ), run.stderr
    check = _cli(env, "config", "check")
    assert check.stdout.splitlines()[0].startswith("TELEGRAM_BOT_TOKEN: must look like a bot token")
    for shown in (run.stderr, check.stdout):
        assert "SECRET" not in shown and "abc" not in shown


def test_a_database_that_never_answers_names_the_setting_and_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that accepts the connection and never speaks: the driver's timeout has no message, and
    every command said `cannot reach the database: ` and nothing more."""

    async def silent(self: Database, revision: str = "head") -> None:
        raise TimeoutError

    monkeypatch.setattr(Database, "upgrade", silent)
    settings = Settings.from_env({"DATABASE_URL": "postgresql://bot:S3cret@127.0.0.1:5999/unogas"})
    with pytest.raises(CliError) as caught:
        with_database(settings, lambda db: asyncio.sleep(0))
    assert str(caught.value) == (
        "cannot reach the database at 127.0.0.1:5999 (DATABASE_URL): no answer within 10 s"
    )


def test_a_link_local_metrics_host_is_the_hosts_problem() -> None:
    """fe80::1 needs a zone (`fe80::1%eth0`): the kernel refuses it with EINVAL, which named METRICS_PORT."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    problem = port_problem("fe80::1", 9109, "METRICS_PORT", "METRICS_HOST")
    assert problem is not None and problem.setting == "METRICS_HOST", problem
