"""How `unogas-bot run` wires the bot: schema upgraded first, persistence, flood control, polling or webhook.

PTB's run_polling / run_webhook are replaced by recorders: no network is touched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import AIORateLimiter, Application, ConversationHandler

from storage.db import Database
from storage.persistence import SqlPersistence
from unogas_bot import runner
from unogas_bot.config import Settings
from unogas_bot.runner import ALLOWED_UPDATES, Webhook

SECRET = "a-webhook-secret_42"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Application, dict[str, Any]]]:
    """What run() asked to serve (PTB's polling, or our webhook server), instead of serving it."""
    calls: list[tuple[str, Application, dict[str, Any]]] = []

    def poll(self: Application, **kwargs: Any) -> None:
        calls.append(("polling", self, kwargs))

    async def hook(app: Application, webhook: Webhook, stop: asyncio.Event) -> None:
        calls.append(("webhook", app, {"webhook": webhook}))

    monkeypatch.setattr(Application, "run_polling", poll)
    monkeypatch.setattr(runner, "serve_webhook", hook)
    return calls


def _settings(tmp_path: Path) -> Settings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"
    return Settings(telegram_token="123456:ABC", database_url=url, bcrypt_rounds=4)


def _revision(url: str) -> str | None:
    async def read() -> str | None:
        db = Database(url)
        try:
            return await db.current_revision()
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_run_upgrades_the_schema_and_polls_with_persistence_and_flood_control(
    tmp_path: Path, served: list[tuple[str, Application, dict[str, Any]]]
) -> None:
    settings = _settings(tmp_path)
    assert runner.run(settings) == 0
    (how, app, kwargs) = served[0]
    assert how == "polling" and kwargs == {"allowed_updates": ALLOWED_UPDATES}
    assert _revision(settings.database_url) is not None, "the schema was brought up to date first"
    assert isinstance(app.persistence, SqlPersistence)
    assert app.persistence.update_interval <= 0.1
    assert isinstance(app.bot.rate_limiter, AIORateLimiter)
    forms = [h for group in app.handlers.values() for h in group if isinstance(h, ConversationHandler)]
    assert forms and all(form.persistent for form in forms)


def test_run_with_a_webhook_serves_it_with_the_secret(
    tmp_path: Path, served: list[tuple[str, Application, dict[str, Any]]]
) -> None:
    hook = Webhook("https://bot.example.it/unogas/telegram", SECRET, port=9443)
    assert runner.run(_settings(tmp_path), hook) == 0
    (how, app, kwargs) = served[0]
    assert how == "webhook" and kwargs == {"webhook": hook}
    assert isinstance(app.persistence, SqlPersistence)
    assert (hook.listen, hook.path) == ("127.0.0.1", "unogas/telegram")


def test_the_command_line_reads_the_webhook_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[tuple[str, Application, dict[str, Any]]]
) -> None:
    from unogas_bot import cli

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABC")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)
    argv = ["run", "--webhook-url", "https://bot.example.it/tg", "--listen", "0.0.0.0", "--port", "8080"]
    assert cli.main(argv) == 0
    (how, _app, kwargs) = served[0]
    assert how == "webhook"
    hook = kwargs["webhook"]
    assert (hook.listen, hook.port, hook.path, hook.secret) == ("0.0.0.0", 8080, "tg", SECRET)


def test_run_without_a_database_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from unogas_bot import cli

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABC")
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/unogas")  # nothing listens
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unogas-bot: cannot start:") and err.count("\n") == 1
