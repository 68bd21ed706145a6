"""The webhook server's connection cap and its accept loop under a full file table (issue 21, item 6),
in-process on loopback with a small cap; tests/ops/test_webhook_flood.py is the real-process run."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import httpx
import pytest
import tornado.web
from tornado.netutil import bind_sockets

from unogas_bot.bot import webhook


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
        await asyncio.sleep(0.5)
        # About one try per pause, not one per turn of the event loop (the unchanged server: thousands).
        assert 2 <= table.calls <= 15, table.calls
        assert all("Too many open files" in r.getMessage() for r in caplog.records)
        table.full = False  # descriptors are free again: the waiting connection is served
        answer = await asyncio.wait_for(reader.read(200), 2)
        assert answer.startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        capped.stop()
        await capped.close_all_connections()
