"""The stand-in over HTTP (unogas_bot/offline/http.py) keeps Telegram's rules a failover depends on, in
process: getUpdates long-polls, an offset confirms, an unconfirmed update goes to the next poller, a second
poller ends the first with a Conflict (a poller that hung up does not), a webhook gets the updates with its
secret and forbids getUpdates; and the leadership's pieces (bot/leader.py) on their own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import tornado.web
from tornado.httpserver import HTTPServer

from unogas_bot.bot import leader
from unogas_bot.offline import http

TOKEN = "123456:TEST-standin"


@pytest.fixture
async def served() -> AsyncIterator[tuple[http.StandInHttp, httpx.AsyncClient, str]]:
    standin = http.StandInHttp(token=TOKEN)
    server, port = http.start(standin, "127.0.0.1", 0)
    root = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=10) as client:
        yield standin, client, root
    await http.stop(server, standin)


async def _call(client: httpx.AsyncClient, root: str, method: str, **params: object) -> httpx.Response:
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    return await client.post(f"{root}/bot{TOKEN}/{method}", data=form)


async def test_updates_are_long_polled_confirmed_and_handed_out_again_until_confirmed(
    served: tuple[http.StandInHttp, httpx.AsyncClient, str],
) -> None:
    standin, client, root = served
    me = (await client.get(f"{root}/bot{TOKEN}/getMe")).json()
    assert me["result"]["id"] == 123456, "the bot id is the token's"
    assert (await client.get(f"{root}/bot999:other/getMe")).status_code == 401
    assert (await _call(client, root, "noSuchMethod")).status_code == 404

    waiting = asyncio.ensure_future(_call(client, root, "getUpdates", offset=0, timeout=5))
    await _eventually(lambda: standin.updates.waiting)  # a long poll the update wakes
    sent = await client.post(f"{root}/standin/users/42/send", json={"text": "/start", "language_code": "en"})
    assert sent.json() == {"ok": True, "update_id": 1}
    first = (await waiting).json()["result"]
    assert [u["update_id"] for u in first] == [1] and first[0]["message"]["text"] == "/start"
    assert first[0]["message"]["from"]["language_code"] == "en"

    again = (await _call(client, root, "getUpdates", offset=0, timeout=0)).json()["result"]
    assert [u["update_id"] for u in again] == [1], "not confirmed: handed out again (a poller died)"
    assert (await _call(client, root, "getUpdates", offset=2, timeout=0)).json()["result"] == []
    assert standin.updates.pending == 0, "offset 2 confirmed update 1"

    reply = await _call(client, root, "sendMessage", chat_id=42, text="<b>Ciao</b>", parse_mode="HTML")
    assert reply.status_code == 200
    replies = (await client.get(f"{root}/standin/users/42/replies", params={"after": 0})).json()["replies"]
    assert [r["text"] for r in replies] == ["Ciao"]
    none_yet = await client.get(f"{root}/standin/users/42/replies", params={"after": 1, "wait": 0.2})
    assert none_yet.json()["replies"] == []
    missing = await client.post(f"{root}/standin/users/42/press", json={"button": "Salva"})
    assert missing.status_code == 400 and "no inline button" in missing.json()["description"]


@pytest.fixture(params=["at once", "busy machine"])
def machine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy machine (2 cores shared): the stand-in takes its time to see a request and a hang-up."""
    if request.param == "at once":
        return
    get, closed = http.UpdateQueue.get, http.BotApiHandler.on_connection_close
    first: list[bool] = []

    async def slow_get(self: http.UpdateQueue, *args: object, **kwargs: object) -> object:
        if not first:
            first.append(True)
            await asyncio.sleep(0.4)
        return await get(self, *args, **kwargs)  # type: ignore[arg-type]

    def slow_close(self: http.BotApiHandler) -> None:
        asyncio.get_running_loop().call_later(0.4, closed, self)

    monkeypatch.setattr(http.UpdateQueue, "get", slow_get)
    monkeypatch.setattr(http.BotApiHandler, "on_connection_close", slow_close)


async def test_a_second_poller_ends_the_first_with_a_conflict_but_a_poller_that_hung_up_does_not(
    machine: None, served: tuple[http.StandInHttp, httpx.AsyncClient, str]
) -> None:
    standin, client, root = served
    first = asyncio.ensure_future(_call(client, root, "getUpdates", timeout=5))
    await _eventually(lambda: standin.updates.waiting)  # the first is polling: the second comes after it
    second = asyncio.ensure_future(_call(client, root, "getUpdates", timeout=0.3))
    ended = await first
    assert ended.status_code == 409 and "terminated by other getUpdates" in ended.json()["description"]
    assert (await second).status_code == 200
    assert standin.status()["get_updates"] == {"calls": 2, "conflicts": 1}

    async with httpx.AsyncClient(timeout=0.3) as impatient:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up, as a killed process would
            await impatient.post(f"{root}/bot{TOKEN}/getUpdates", data={"timeout": "5"})
    await _eventually(lambda: not standin.updates.waiting)  # the stand-in saw it hang up
    assert (await _call(client, root, "getUpdates", timeout=0)).status_code == 200
    assert standin.status()["get_updates"]["conflicts"] == 1, "a poller that hung up is no conflict"


async def test_a_webhook_gets_the_updates_with_its_secret_and_getupdates_is_refused(
    served: tuple[http.StandInHttp, httpx.AsyncClient, str],
) -> None:
    standin, client, root = served
    received: list[tuple[str | None, dict[str, object]]] = []

    class Receiver(tornado.web.RequestHandler):
        def post(self) -> None:
            if len(received) == 0 and not getattr(Receiver, "refused", False):
                Receiver.refused = True  # type: ignore[attr-defined]
                self.set_status(500)  # the first try fails: delivered again
                return
            received.append(
                (self.request.headers.get(http.WEBHOOK_SECRET_HEADER), json.loads(self.request.body))
            )

    hook = HTTPServer(tornado.web.Application([(r"/hook", Receiver)]))
    sockets = __import__("tornado.netutil").netutil.bind_sockets(0, "127.0.0.1")
    hook.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hook"
    try:
        assert (await _call(client, root, "setWebhook", url=url, secret_token="s3cret")).status_code == 200
        refused = await _call(client, root, "getUpdates")
        assert refused.status_code == 409 and "webhook is active" in refused.json()["description"]
        await client.post(f"{root}/standin/users/7/send", json={"text": "ciao"})
        # The stand-in counts the delivery after the receiver answered: wait for both, with a deadline.
        await _eventually(lambda: bool(received) and standin.updates.pending == 0)
        assert received[0][0] == "s3cret" and received[0][1]["message"]["text"] == "ciao"  # type: ignore[index]
        assert standin.updates.pending == 0
        assert (await _call(client, root, "deleteWebhook", drop_pending_updates=True)).status_code == 200
    finally:
        hook.stop()
        await standin.close()


async def _eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait for `condition` to hold, checking every 20 ms, failing after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


def test_the_lock_keys_are_the_bot_ids_two_halves() -> None:
    assert leader.lock_keys(123456) == (0, 123456)
    for bot_id in (7_123_456_789, (1 << 63) - 1, 1 << 31):
        high, low = leader.lock_keys(bot_id)
        assert -(1 << 31) <= high < 1 << 31 and -(1 << 31) <= low < 1 << 31, "two int4 keys"
        assert (high << 32) | (low & 0xFFFFFFFF) == bot_id, "the whole id"
    assert (
        leader.asyncpg_dsn("postgresql+asyncpg://u:p@h:5/db?ssl=require")
        == "postgresql://u:p@h:5/db?sslmode=require"
    )


async def test_one_process_per_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    first = leader.leadership_for(url, 1, lambda reason: None)
    second = leader.leadership_for(url, 1, lambda reason: None)
    assert isinstance(first, leader.FileLeadership) and not first.waits
    await first.acquire()
    with pytest.raises(leader.LeadershipRefused, match="only one may run on an SQLite database"):
        await second.acquire()
    await first.release()
    await second.acquire()  # free again once the first let go
    await second.release()
    memory = leader.leadership_for("sqlite+aiosqlite:///:memory:", 1, lambda reason: None)
    await memory.acquire()
    assert memory.role == "leader" and await memory.confirm()
