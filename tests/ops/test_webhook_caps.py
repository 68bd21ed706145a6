"""The webhook server's connection cap and its accept loop under a full file table (issue 21, item 6),
in-process on loopback with a small cap; tests/ops/test_webhook_flood.py is the real-process run."""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import socket
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import tornado.web
from tornado.netutil import bind_sockets

from unogas_bot.bot import webhook
from unogas_bot.security import log_repeats


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("ok")


def server(cap: int) -> tuple[webhook.CappedHTTPServer, int, list[socket.socket]]:
    capped = webhook.CappedHTTPServer(tornado.web.Application([(r"/", Hello)]), idle_connection_timeout=10)
    capped.max_connections = cap
    sockets = bind_sockets(0, "127.0.0.1")
    return capped, sockets[0].getsockname()[1], sockets


async def test_a_new_connection_over_the_cap_closes_the_oldest_half_open_one() -> None:
    capped, port, sockets = server(3)
    capped.add_sockets(sockets)
    try:
        half_open = []
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            half_open.append((reader, writer))
        await asyncio.sleep(0.1)
        # The first two were closed to make room: they read the end of the stream at once.
        assert await asyncio.wait_for(half_open[0][0].read(), 2) == b""
        assert await asyncio.wait_for(half_open[1][0].read(), 2) == b""
        async with httpx.AsyncClient(timeout=2) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
        assert len(capped._open) <= 3
        for _reader, writer in half_open:
            writer.close()
    finally:
        capped.stop()
        await capped.close_all_connections()


class FullTable:
    """A listening socket whose accept() fails with EMFILE while `full` is set (a full file table)."""

    def __init__(self, real: socket.socket) -> None:
        self.real, self.full, self.calls = real, True, 0

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> Any:
        self.calls += 1
        if self.full:
            raise OSError(errno.EMFILE, "Too many open files")
        return self.real.accept()

    def close(self) -> None:
        self.real.close()


async def test_accepting_pauses_while_the_file_table_is_full(caplog: pytest.LogCaptureFixture) -> None:
    capped, port, sockets = server(10)
    capped.accept_pause = 0.05
    table = FullTable(sockets[0])
    capped.add_sockets([table])  # type: ignore[list-item]
    try:
        caplog.set_level(logging.ERROR, logger="unogas_bot.bot.webhook")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        started = asyncio.get_running_loop().time()
        await until(lambda: table.calls >= 3)
        await asyncio.sleep(0.2)
        elapsed = asyncio.get_running_loop().time() - started
        # About one try per pause, not one per turn of the event loop (the unchanged server: thousands):
        # never more than the pauses that fit in the time waited (however slow the machine).
        assert table.calls <= elapsed / capped.accept_pause + 2, (table.calls, elapsed)
        assert all("Too many open files" in r.getMessage() for r in caplog.records)
        table.full = False  # descriptors are free again: the waiting connection is served
        answer = await asyncio.wait_for(reader.read(200), 2)
        assert answer.startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        capped.stop()
        await capped.close_all_connections()


# --- requests without the secret hold nothing (the adversarial pass after issue 21) -------------------


def real_server(cap: int) -> tuple[webhook.CappedHTTPServer, int, asyncio.Queue[Any]]:
    """The webhook's own server (`webhook.start`) on loopback with a small cap; its updates go to the
    returned queue."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    queue: asyncio.Queue[Any] = asyncio.Queue()
    app = SimpleNamespace(bot=None, update_queue=queue)
    started = webhook.start(app, "127.0.0.1", port, "hook", "S")  # type: ignore[arg-type]
    assert isinstance(started, webhook.CappedHTTPServer)
    started.max_connections = cap
    return started, port, queue


async def until(condition: Any, within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("the condition was not met in time")


# Complete headers with no secret, each announcing a body it then trickles: another path, another method.
NO_SECRET = [
    b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n{",
    b"PUT /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n{",
    b"POST /hook/more HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n{",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n{",
]


async def test_requests_without_the_secret_never_keep_telegram_out() -> None:
    """A full cap of requests whose headers are complete but carry no secret (another path, another
    method: the handler never looks at them) announcing a body they trickle: before, each counted as "in a
    request" until the 10 s body timeout, so a new connection (Telegram's) was closed instead, again and
    again. They are answered and closed at once, and in any case never outrank a legitimate request."""
    capped, port, queue = real_server(len(NO_SECRET))
    try:
        held = []
        for request in NO_SECRET:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            held.append((reader, writer))
        for reader, _writer in held:  # each answered without its body being waited for
            answer = await asyncio.wait_for(reader.read(), 2)
            assert answer.split(b" ")[1] in (b"404", b"405"), answer[:40]
        async with httpx.AsyncClient(timeout=2) as client:
            ok = await client.post(
                f"http://127.0.0.1:{port}/hook", json={"update_id": 7}, headers={webhook.SECRET_HEADER: "S"}
            )
        assert ok.status_code == 200 and (await queue.get()).update_id == 7
        for _reader, writer in held:
            writer.close()
    finally:
        await webhook.stop(capped)


async def test_half_sent_requests_without_the_secret_are_evicted_for_telegram() -> None:
    """Headers complete, the body still coming, and no secret (an application that reads the body before
    answering, as tornado's own handlers do): such a connection is evicted for a new one like a half-open
    one; only a request with the secret is "in a request" and kept."""
    capped, port, sockets = server(3)
    capped.secret = b"S"
    capped.add_sockets(sockets)
    try:
        held = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n{")
            held.append((reader, writer))
        await until(lambda: len(capped._open) == 3)
        async with httpx.AsyncClient(timeout=2) as client:
            ok = await client.get(f"http://127.0.0.1:{port}/", headers={webhook.SECRET_HEADER: "S"})
        assert ok.text == "ok"
        assert await asyncio.wait_for(held[0][0].read(), 2) == b"", "the oldest was closed to make room"
        for _reader, writer in held:
            writer.close()
    finally:
        capped.stop()
        await capped.close_all_connections()


async def test_a_flood_of_refused_and_malformed_requests_is_a_few_log_lines() -> None:
    """Anyone who finds the address can send requests without the secret, or that are not HTTP at all: a
    line each (the webhook's "answered 403", tornado's "Malformed HTTP message", at INFO) let them write
    the log as fast as they send. Like repeated warnings, they are folded: a line a minute, with a count."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    log_repeats.install(handler)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    capped, port, _queue = real_server(8)
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for update_id in range(150):
                wrong = {webhook.SECRET_HEADER: f"guess-{update_id}"}
                refused = await client.post(
                    f"http://127.0.0.1:{port}/hook", json={"update_id": update_id}, headers=wrong
                )
                assert refused.status_code == 403
        for _ in range(150):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await asyncio.wait_for(reader.read(), 2)
            writer.close()
    finally:
        await webhook.stop(capped)
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [
        line for line in out.getvalue().splitlines() if "httpx" not in line and "HTTP Request" not in line
    ]
    assert 1 <= len(lines) <= 5, lines[:10]
