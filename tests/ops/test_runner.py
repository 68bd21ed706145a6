"""How `unogas-bot run` wires the bot: schema upgraded first, persistence, flood control, polling or webhook.

In the wiring tests PTB's run_polling and our webhook server are replaced by recorders; the start-up tests
run the real process against a Bot API stand-in on loopback, or against a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Bot
from telegram.ext import AIORateLimiter, Application, ConversationHandler

from storage.db import Database
from storage.persistence import SqlPersistence
from unogas_bot.bot import runner
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.runner import StartupError, Webhook
from unogas_bot.config import Settings

SECRET = "a-webhook-secret_42"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Application, dict[str, Any]]]:
    """What run() asked to serve (PTB's polling, or our webhook server), instead of serving it."""
    calls: list[tuple[str, Application, dict[str, Any]]] = []

    async def poll(app: Application, stop: asyncio.Event) -> None:
        calls.append(("polling", app, {}))

    async def hook(app: Application, webhook: Webhook, stop: asyncio.Event) -> None:
        calls.append(("webhook", app, {"webhook": webhook}))

    async def reached(app: Application) -> None:
        calls.append(("getMe", app, {}))

    monkeypatch.setattr(runner, "serve_polling", poll)
    monkeypatch.setattr(runner, "serve_webhook", hook)
    monkeypatch.setattr(runner, "reach_telegram", reached)
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
    assert [how for how, _app, _kwargs in served] == ["getMe", "polling"], "Telegram reached first"
    (_how, app, _kwargs) = served[1]
    assert _revision(settings.database_url) is not None, "the schema was brought up to date first"
    assert isinstance(app.persistence, SqlPersistence)
    assert isinstance(app.inbox, Inbox), "every update goes through the inbox"
    assert app.persistence.inbox is app.inbox.store
    assert app.persistence.update_interval <= 0.1
    assert isinstance(app.bot.rate_limiter, AIORateLimiter)
    forms = [h for group in app.handlers.values() for h in group if isinstance(h, ConversationHandler)]
    assert forms and all(form.persistent for form in forms)


def test_run_with_a_webhook_serves_it_with_the_secret(
    tmp_path: Path, served: list[tuple[str, Application, dict[str, Any]]]
) -> None:
    hook = Webhook("https://bot.example.it/unogas/telegram", SECRET, port=9443)
    assert runner.run(_settings(tmp_path), hook) == 0
    (how, app, kwargs) = served[-1]
    assert how == "webhook" and kwargs == {"webhook": hook}
    assert isinstance(app.persistence, SqlPersistence)
    assert (hook.listen, hook.path) == ("127.0.0.1", "unogas/telegram")


def test_the_command_line_reads_the_webhook_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[tuple[str, Application, dict[str, Any]]]
) -> None:
    from unogas_bot.cli import main as cli

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABC")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)
    argv = ["run", "--webhook-url", "https://bot.example.it/tg", "--listen", "0.0.0.0", "--port", "8080"]
    assert cli.main(argv) == 0
    (how, _app, kwargs) = served[-1]
    assert how == "webhook"
    hook = kwargs["webhook"]
    assert (hook.listen, hook.port, hook.path, hook.secret) == ("0.0.0.0", 8080, "tg", SECRET)


def test_run_without_a_database_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from unogas_bot.cli import main as cli

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABC")
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/unogas")  # nothing listens
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unogas-bot: cannot start:") and err.count("\n") == 1


# --- start-up against Telegram ---------------------------------------------------------------------------

BOT_USER = {"id": 1000001, "is_bot": True, "first_name": "Unogas", "username": "UnogasBot"}
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")


@contextmanager
def stub_bot_api(
    answers: dict[str, tuple[int, dict[str, Any]]], called: list[str] | None = None
) -> Iterator[str]:
    """A Bot API on loopback: each method in `answers` gets its (status, JSON); getMe names the bot,
    getUpdates has no update (after a short long-poll) and any other method answers true; `called` gets the
    name of each method called. Yields the base URL for TELEGRAM_API_BASE_URL (the token is appended)."""
    results: dict[str, Any] = {"getMe": BOT_USER, "getUpdates": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            method = self.path.rstrip("/").rsplit("/", 1)[-1]
            if called is not None:
                called.append(method)
            if method == "getUpdates" and method not in answers:
                time.sleep(0.2)
            default = (200, {"ok": True, "result": results.get(method, True)})
            status, answer = answers.get(method, default)
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # the bot hung up on a long poll when it stopped: nothing to report

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/bot"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def bot_process(tmp_path: Path, api_url: str, *options: str) -> Iterator[subprocess.Popen[str]]:
    """`unogas-bot run` as an operator starts it, on a fresh SQLite file, against `api_url`."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": "123456:ABC-stub",
        "TELEGRAM_API_BASE_URL": api_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        "BCRYPT_ROUNDS": "4",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "unogas_bot", "run", *options], stderr=subprocess.PIPE, text=True, env=env
    )
    watchdog = threading.Timer(60, process.kill)  # a hung test ends, and fails
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        assert process.stderr is not None
        process.stderr.close()


def _lines_until(process: subprocess.Popen[str], wanted: str, count: int) -> list[str]:
    """stderr lines up to the `count`th one containing `wanted` (or up to the end of the output)."""
    assert process.stderr is not None
    lines: list[str] = []
    while sum(wanted in line for line in lines) < count:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
    return lines


def test_run_retries_an_unreachable_bot_api_saying_so_in_one_line_per_try(tmp_path: Path) -> None:
    with bot_process(tmp_path, f"http://127.0.0.1:{_closed_port()}/bot") as process:
        lines = _lines_until(process, "(getMe) failed (try", count=2)
        process.send_signal(signal.SIGINT)  # Ctrl+C while it waits for the next try
        assert process.stderr is not None
        lines += process.stderr.readlines()
        assert process.wait(timeout=30) == 130
    tries = [line for line in lines if "(getMe) failed" in line]
    assert "try 1 of 8" in tries[0] and "next try in 1 s" in tries[0], lines
    assert "try 2 of 8" in tries[1] and "next try in 2 s" in tries[1], "the wait grows"
    assert all(LOG_LINE.match(line) for line in lines), "one log line per try, no traceback"
    assert not any("Traceback" in line or "123456:ABC" in line for line in lines)


async def test_start_up_calls_give_up_after_their_tries_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    bot = Bot("123456:ABC-stub", base_url=f"http://127.0.0.1:{port}/bot")
    caplog.set_level(logging.WARNING, logger="unogas_bot.bot.runner")
    with pytest.raises(StartupError) as gave_up:
        await runner.with_retries("getMe", bot.get_me, tries=3, wait=0.01)
    assert str(gave_up.value).startswith("getMe failed 3 times, the last with NetworkError:")
    assert [r.getMessage().split(" (try")[0] for r in caplog.records] == ["getMe failed"] * 2

    refusal = {"getMe": (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})}
    with stub_bot_api(refusal) as url:
        bot = Bot("123456:ABC-stub", base_url=url)
        caplog.clear()
        with pytest.raises(StartupError) as refused:
            await runner.with_retries("getMe", bot.initialize, tries=3, wait=0.01)
    assert str(refused.value).startswith("Telegram refused getMe: InvalidToken:"), "a bad token is final"
    assert "ABC-stub" not in str(refused.value) and not caplog.records


def test_another_instance_polling_with_the_token_is_one_clear_line(tmp_path: Path) -> None:
    conflict = {"getUpdates": (409, {"ok": False, "error_code": 409, "description": CONFLICT})}
    with stub_bot_api(conflict) as url, bot_process(tmp_path, url) as process:
        lines = _lines_until(process, "another instance of the bot is polling Telegram with this token", 1)
        process.send_signal(signal.SIGTERM)  # a clean stop: PTB's last getUpdates meets the conflict too
        assert process.stderr is not None
        lines += process.stderr.readlines()
        assert process.wait(timeout=30) == 0
    conflicts = [line for line in lines if "another instance" in line]
    # PTB meets the conflict again at each retry and at the stop: the same error within a minute is one
    # line (unogas_bot/security/log_repeats.py).
    assert len(conflicts) == 1 and CONFLICT in conflicts[0], lines
    assert all(LOG_LINE.match(line) for line in lines), "every record is one line: no traceback"
    assert not any("ABC-stub" in line for line in lines)


def test_run_with_a_webhook_serves_until_sigterm(tmp_path: Path) -> None:
    port = _closed_port()
    with stub_bot_api({}) as url:
        options = ["--webhook-url", "https://bot.example.it/tg", "--port", str(port)]
        with bot_process(tmp_path, url, *options) as process:
            lines = _lines_until(process, "is running on Telegram (webhook", count=1)
            for _ in range(100):  # the server listens once setWebhook is done
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            refused = httpx.post(f"http://127.0.0.1:{port}/tg", json={"update_id": 1}, timeout=5)
            assert refused.status_code == 403, "no secret, no update"
            process.send_signal(signal.SIGTERM)
            assert process.stderr is not None
            lines += process.stderr.readlines()
            assert process.wait(timeout=30) == 0
    assert all(LOG_LINE.match(line) for line in lines) and not any("Traceback" in line for line in lines)
