"""Issue 24's settings in `config check`: each bad value one line naming its setting, the broker asked
whether it accepts AMQP_URL, and the URL (it may hold a password) never repeated."""

from __future__ import annotations

import socket
from pathlib import Path

from unogas_bot.cli.checks import all_problems
from unogas_bot.config import Settings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_bad_event_settings_are_one_line_each(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none' / 'x.db'}",
        "AMQP_URL": "http://secret:pw@broker:15672/",
        "EVENTS_SHARE_CREDENTIALS": "maybe",
        "EVENTS_RETENTION_DAYS": "0",
        "EVENTS_NAME_PREFIX": "bad prefix!",
    }
    shown = [str(p) for p in await all_problems(env, network=False) if not p.setting.startswith("DATABASE")]
    assert shown == [
        "AMQP_URL: must be an amqp:// or amqps:// URL such as amqp://user:pass@host:5672/",
        "EVENTS_SHARE_CREDENTIALS: must be true or false, not 'maybe'",
        "EVENTS_RETENTION_DAYS: must be between 1 and 3650, not 0",
        "EVENTS_NAME_PREFIX: must be 1-64 of A-Z a-z 0-9 . _ - (such as staging.)",
    ]
    assert "secret" not in " ".join(shown)


async def test_an_unreachable_broker_names_amqp_url(tmp_path: Path) -> None:
    port = _closed_port()
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none' / 'x.db'}"}
    env["AMQP_URL"] = f"amqp://user:secret@127.0.0.1:{port}/"
    problems = [str(p) for p in await all_problems(env, network=True) if p.setting == "AMQP_URL"]
    assert problems == [
        f"AMQP_URL: cannot reach the broker at 127.0.0.1:{port}: connection refused "
        "(is RabbitMQ running, on that port?)"
    ]


def test_the_defaults_keep_events_in_the_outbox_without_credentials() -> None:
    settings = Settings.from_env({})
    assert settings.amqp_url is None and settings.events_share_credentials is False
    assert settings.events_retention.days == 30
    shared = Settings.from_env({"EVENTS_SHARE_CREDENTIALS": "true", "AMQP_URL": "amqp://u:p@h/"})
    assert shared.events_share_credentials and "u:p" not in repr(shared)
