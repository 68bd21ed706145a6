"""`unogas-bot run --webhook-url`: PTB's real webhook server on loopback, against the offline Bot API.

Only requests that carry the secret token (X-Telegram-Bot-Api-Secret-Token) reach the bot.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram.ext import Application

from storage.demo import load_demo
from storage.inbox import Arrived, InboxStore
from storage.persistence import SqlPersistence
from tests.conftest import FakeClock, make_test_database
from tests.kit.botkit import TEST_SETTINGS
from tests.kit.stores import stores
from unogas_bot.bot.inbox import Inbox
from unogas_bot.bot.runner import ALLOWED_UPDATES, Webhook, serve_webhook
from unogas_bot.bot.webhook import MAX_BODY
from unogas_bot.bot.wiring import build_application
from unogas_bot.cli import main as cli
from unogas_bot.config import ConfigError, Settings
from unogas_bot.offline import Called, OfflineBotAPI, Sent, offline_builder
from unogas_bot.security import sealing
from unogas_bot.service.context import Services

SECRET = "s3cr3t_Token-for-the-webhook"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _update(update_id: int, text: str, user_id: int = 1001) -> dict[str, Any]:
    person = {"id": user_id, "is_bot": False, "first_name": "Mario", "language_code": "it"}
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "Mario"},
        "from": person,
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


@asynccontextmanager
async def webhook_bot(
    tmp_path: Path, hook: Webhook, inbox: bytes | None = None
) -> AsyncIterator[tuple[Application, OfflineBotAPI]]:
    """The bot as `run --webhook-url` builds and serves it (persistence included; with `inbox`, the
    update inbox's master secret, as `run` has it), on loopback."""
    async with make_test_database("sqlite", tmp_path) as db:
        services = Services.create(TEST_SETTINGS, db, clock=FakeClock())
        await load_demo(stores(services).registry)
        api = OfflineBotAPI()
        api.register_chat(1001, first_name="Mario")  # the chat Telegram would know
        updates = None if inbox is None else Inbox(InboxStore(db, 1000001), sealing.Sealer(inbox))
        app = build_application(
            services, builder=offline_builder(api), persistence=SqlPersistence(db), inbox=updates
        )
        stop = asyncio.Event()
        serving = asyncio.create_task(serve_webhook(app, hook, stop))
        try:
            for _ in range(250):  # until setWebhook: by then the server listens
                if serving.done() or any(
                    isinstance(e, Called) and e.method == "setWebhook" for e in api.events
                ):
                    break
                await asyncio.sleep(0.02)
            assert not serving.done(), serving.exception()
            yield app, api
        finally:
            stop.set()
            await serving
            services.hasher.close()


async def _replies(api: OfflineBotAPI, chat_id: int, at_least: int, within: float = 5.0) -> list[str]:
    for _ in range(int(within / 0.02)):
        if len(api.texts_to(chat_id)) >= at_least:
            break
        await asyncio.sleep(0.02)
    return api.texts_to(chat_id)


async def test_only_requests_with_the_secret_token_are_processed(tmp_path: Path) -> None:
    port = _free_port()
    hook = Webhook("https://bot.example.it/unogas/telegram", SECRET, listen="127.0.0.1", port=port)
    assert hook.path == "unogas/telegram", "by default the server answers on the public URL's path"
    async with webhook_bot(tmp_path, hook) as (_app, api):
        (registered,) = [e for e in api.events if isinstance(e, Called) and e.method == "setWebhook"]
        assert registered.params["url"] == hook.url
        assert registered.params["secret_token"] == SECRET
        assert registered.params["allowed_updates"] == ALLOWED_UPDATES

        url = f"http://127.0.0.1:{port}/{hook.path}"
        async with httpx.AsyncClient(timeout=5) as client:
            missing = await client.post(url, json=_update(1, "/registrati"))
            wrong = await client.post(url, json=_update(2, "/registrati"), headers={HEADER: "guess"})
            assert (missing.status_code, wrong.status_code) == (403, 403)
            await asyncio.sleep(0.3)
            assert not [e for e in api.events if isinstance(e, Sent)], "nothing was processed"

            right = await client.post(url, json=_update(3, "/registrati"), headers={HEADER: SECRET})
            assert right.status_code == 200
            said = await _replies(api, 1001, at_least=2)
            assert "Continua" in said[-1]  # the privacy notice comes first
            right = await client.post(url, json=_update(4, "continua"), headers={HEADER: SECRET})
            assert right.status_code == 200
            said = await _replies(api, 1001, at_least=3)
            assert "codice cliente" in said[-1], "the conversation goes on through the webhook"
            elsewhere = await client.post(f"http://127.0.0.1:{port}/other", json=_update(5, "/start"))
            assert elsewhere.status_code == 404


async def _raw_post(port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """POST `body` (perhaps only the start of what Content-Length announces) and read the answer until the
    server closes the connection; fail if it keeps waiting for the rest of the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), timeout=5)
        except TimeoutError:
            pytest.fail("the server waited for the rest of the body instead of answering")
    finally:
        writer.close()


async def test_bodies_are_refused_before_they_are_read(tmp_path: Path) -> None:
    """Without the secret, or with more than MAX_BODY announced, the server answers and closes the connection
    after the headers: the 50 MB body announced is never waited for, read or buffered."""
    port = _free_port()
    hook = Webhook("https://bot.example.it/tg", SECRET, port=port)
    huge = {"Content-Type": "application/json", "Content-Length": str(50_000_000)}
    async with webhook_bot(tmp_path, hook) as (_app, api):
        answer = await _raw_post(port, hook.path, huge, b'{"update_id": 1, ')
        assert answer.startswith(b"HTTP/1.1 403 ")
        answer = await _raw_post(port, hook.path, {**huge, HEADER: "guess"}, b"")
        assert answer.startswith(b"HTTP/1.1 403 ")
        too_big = {**huge, HEADER: SECRET, "Content-Length": str(MAX_BODY + 1)}
        answer = await _raw_post(port, hook.path, too_big, b'{"update_id": 1, ')
        assert answer.startswith(b"HTTP/1.1 413 ")

        # A chunked body (no length announced) is cut off at MAX_BODY, even a well-formed update.
        update = json.dumps(_update(9, "/registrati")).encode()
        padded = update[:-1] + b" " * (MAX_BODY + 1 - len(update)) + b"}"
        chunks = b"".join(
            f"{len(part):x}\r\n".encode() + part + b"\r\n"
            for part in (padded[i : i + 65536] for i in range(0, len(padded), 65536))
        )
        chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked", HEADER: SECRET}
        answer = await _raw_post(port, hook.path, chunked, chunks + b"0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        await asyncio.sleep(0.3)
        assert not [e for e in api.events if isinstance(e, Sent)], "no refused request reached the bot"

        # The same update in a normal body goes through.
        async with httpx.AsyncClient(timeout=5) as client:
            url = f"http://127.0.0.1:{port}/{hook.path}"
            ok = await client.post(
                url, content=update, headers={HEADER: SECRET, "Content-Type": "application/json"}
            )
            assert ok.status_code == 200
            assert "Continua" in (await _replies(api, 1001, at_least=2))[-1]  # the privacy notice
            junk = await client.post(url, content=b"[1, 2]", headers={HEADER: SECRET})
            assert junk.status_code == 400


def test_webhook_path_can_differ_from_the_public_url() -> None:
    hook = Webhook("https://bot.example.it/hook", SECRET, url_path="/internal/tg/")
    assert hook.path == "internal/tg"
    assert SECRET not in repr(hook)


def test_secrets_never_appear_in_the_settings_repr() -> None:
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": "123:ABC", "TELEGRAM_WEBHOOK_SECRET": SECRET})
    assert settings.telegram_webhook_secret == SECRET
    assert SECRET not in repr(settings) and "123:ABC" not in repr(settings)


@pytest.mark.parametrize("bad", ["with space", "x" * 257, "semi;colon"])
def test_a_malformed_webhook_secret_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"TELEGRAM_WEBHOOK_SECRET": bad})
    assert bad not in str(refused.value)


@pytest.mark.parametrize(
    ("argv", "env", "reason"),
    [
        (["run", "--webhook-url", "https://bot.example.it/tg"], {}, "TELEGRAM_WEBHOOK_SECRET is not set"),
        (
            ["run", "--webhook-url", "http://bot.example.it/tg"],
            {"TELEGRAM_WEBHOOK_SECRET": SECRET},
            "https://",
        ),
        (["run", "--webhook-url", "bot.example.it"], {"TELEGRAM_WEBHOOK_SECRET": SECRET}, "https://"),
    ],
)
def test_run_refuses_an_unusable_webhook_setup(
    argv: list[str],
    env: dict[str, str],
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:ABC")
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("TELEGRAM_API_BASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert reason in err and err.count("\n") == 1
    assert SECRET not in err


def test_the_port_must_be_a_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--webhook-url", "https://bot.example.it/tg", "--port", "70000"])
    assert "1-65535" in capsys.readouterr().err


async def test_an_update_is_in_the_inbox_before_telegram_hears_200_and_is_handled_once(
    tmp_path: Path,
) -> None:
    port = _free_port()
    hook = Webhook("https://bot.example.it/tg", SECRET, listen="127.0.0.1", port=port)
    key = bytes(range(32))
    url = f"http://127.0.0.1:{port}/tg"
    async with webhook_bot(tmp_path, hook, inbox=key) as (app, api):
        inbox: Inbox = app.inbox  # type: ignore[attr-defined]
        store = inbox.store
        written: list[int] = []
        admit = store.admit

        async def watched(arrived: list[Arrived], confirmed_below: int | None = None) -> set[int]:
            new = await admit(arrived, confirmed_below)
            written.extend(a.update_id for a in arrived)
            return new

        store.admit = watched  # type: ignore[method-assign]
        async with httpx.AsyncClient(timeout=5) as client:
            first = await client.post(url, json=_update(10, "/registrati"), headers={HEADER: SECRET})
            assert first.status_code == 200 and written == [10], "written down before the 200"
            said = await _replies(api, 1001, at_least=2)
            again = await client.post(url, json=_update(10, "/registrati"), headers={HEADER: SECRET})
            assert again.status_code == 200, "Telegram sent it again (a timeout on its side): taken already"
            await asyncio.sleep(0.3)
            assert api.texts_to(1001) == said, "not answered twice"

            async def unreachable(arrived: list[Arrived], confirmed_below: int | None = None) -> set[int]:
                raise OSError("the database went away")

            store.admit = unreachable  # type: ignore[method-assign]
            refused = await client.post(url, json=_update(11, "continua"), headers={HEADER: SECRET})
            assert refused.status_code == 503, "not written: Telegram keeps it and tries again"
            await asyncio.sleep(0.3)
            assert api.texts_to(1001) == said
            store.admit = watched  # type: ignore[method-assign]
            retried = await client.post(url, json=_update(11, "continua"), headers={HEADER: SECRET})
            assert retried.status_code == 200
            assert "codice cliente" in (await _replies(api, 1001, at_least=len(said) + 1))[-1]
        for _ in range(250):  # the reply comes first, the save right after
            if await store.counts() == (0, 2):
                break
            await asyncio.sleep(0.02)
        assert await store.counts() == (0, 2), "both handled, nothing waiting"
