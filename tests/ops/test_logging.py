"""What operators see in the log: LOG_LEVEL (INFO by default), and records that stay readable while
secrets and customers' data are redacted (hardening/test_secret_leaks.py checks that nothing a customer
typed leaks)."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import pytest
from telegram.error import Conflict

from tests.ops.test_runner import LOG_LINE, bot_process, stub_bot_api
from unogas_bot.config import ConfigError, Settings
from unogas_bot.security import redaction

PASSWORD = "Ombrello giallo 314"


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("", None),
        ("DEBUG", logging.DEBUG),
        ("info", logging.INFO),
        (" Warning ", logging.WARNING),
        ("ERROR", 40),
    ],
)
def test_log_level_comes_from_the_environment(value: str, level: int | None) -> None:
    assert Settings.from_env({"LOG_LEVEL": value}).log_level == level


def test_a_bad_log_level_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from unogas_bot.cli import main as cli

    with pytest.raises(ConfigError, match="LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'loud'"):
        Settings.from_env({"LOG_LEVEL": "loud"})
    monkeypatch.setenv("LOG_LEVEL", "loud")
    assert cli.main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unogas-bot: LOG_LEVEL must be") and err.count("\n") == 1


def _bot_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_level: str | None) -> list[str]:
    """The log of `unogas-bot run` (against a Bot API stand-in on loopback) from start to a clean stop."""
    if log_level is None:
        monkeypatch.delenv("LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("LOG_LEVEL", log_level)
    called: list[str] = []
    with stub_bot_api({}, called) as url, bot_process(tmp_path, url) as process:
        for _ in range(600):  # until the bot polls: it has started
            if "getUpdates" in called or process.poll() is not None:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        lines = process.stderr.readlines()
        assert process.wait(timeout=30) == 0
    assert all(LOG_LINE.match(line) for line in lines), lines
    return lines


def test_info_records_show_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _bot_log(tmp_path, monkeypatch, log_level=None)
    assert any(
        " INFO unogas_bot.bot.runner: unogas-bot is running on Telegram (long polling)" in x for x in lines
    )
    assert any(" INFO telegram.ext.Application: Application started" in line for line in lines)
    assert not any(" httpx: " in line for line in lines), "every Bot API request at INFO would be noise"


def test_log_level_warning_leaves_the_info_records_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _bot_log(tmp_path, monkeypatch, log_level="WARNING")
    assert not any(" INFO " in line for line in lines), lines


def _logged(caplog: pytest.LogCaptureFixture, logger: str, msg: str, *args: object) -> str:
    redaction.install()
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    logging.getLogger(logger).debug(msg, *args)
    (record,) = caplog.records
    return record.getMessage()


def test_harmless_arguments_read_as_written(caplog: pytest.LogCaptureFixture) -> None:
    retry = "Network Retry Loop (Bootstrap Initialize Application): Timed out: Timed out."
    logged = _logged(
        caplog, "telegram.ext._utils.networkloop", "%s Failed run number %s of %s. Retrying.", retry, 0, 0
    )
    assert logged == f"{retry} Failed run number 0 of 0. Retrying."
    conflict = Conflict("Conflict: terminated by other getUpdates request")
    assert (
        _logged(caplog, "telegram.ext.Updater", "%s", conflict)
        == "Conflict: terminated by other getUpdates request"
    )
    logged = _logged(caplog, "telegram.ext.Updater", "Error: %s", "Bad Request: message to delete not found")
    assert logged == "Error: Bad Request: message to delete not found"
    logged = _logged(
        caplog, "telegram.ext.ConversationHandler", "Selecting %s in %s", "(1001, 1001)", "email"
    )
    assert logged == "Selecting (1001, 1001) in email"
    assert _logged(caplog, "telegram.Bot", "Getting updates: %s", [7, 8]) == "Getting updates: [7, 8]"


def test_secrets_and_personal_data_are_still_redacted(caplog: pytest.LogCaptureFixture) -> None:
    hook = "telegram.ext.Updater"
    assert _logged(caplog, hook, "Request had the wrong secret token: %s", PASSWORD).endswith(": <redacted>")
    body = json.dumps({"update_id": 7, "message": {"text": PASSWORD}})
    assert _logged(caplog, hook, "Webhook received data: %s", body) == "Webhook received data: <redacted>"
    assert _logged(caplog, hook, "Received %(what)s", {"what": body}) == "Received <payload>"
    assert _logged(caplog, hook, "Got %(password)s", {"password": PASSWORD}) == "Got <redacted>"
    typed = "mario.rossi@example.it RSSMRA75C12H501H +39 347 123 4567 02847390586 bot123456:AbC-xyz/getMe"
    logged = _logged(caplog, "telegram.Bot", "Saw %s", typed)
    assert logged == "Saw <e-mail> <tax code> <number> bot<token>/getMe"
    assert _logged(caplog, "telegram.Bot", "Failed: %s", ValueError(PASSWORD)) == "Failed: ValueError"
    assert _logged(caplog, "telegram.Bot", "Sent %s", {"q": PASSWORD}) == "Sent <dict>"
    assert _logged(caplog, "telegram.Bot", f"Made before: {typed}") == "Made before: " + logged[4:]
    rejected = Conflict("The token `123456:AAE-secret` was rejected by the server.")
    assert "AAE-secret" not in _logged(caplog, "telegram.Bot", "%s", rejected)
