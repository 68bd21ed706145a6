"""A loopback TCP proxy for outage tests: it forwards bytes both ways until told to black-hole them.

A black-holed proxy keeps every connection open and accepts new ones, but passes nothing on, in either
direction: what a server that stopped answering (or a network path that silently drops packets) looks like
to the bot. Bytes that arrive meanwhile are held, as TCP would keep retransmitting them, and delivered in
order once the proxy forwards again.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class TcpProxy:
    """``async with TcpProxy(host, port) as proxy``: listens on 127.0.0.1:``proxy.port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._forwarding = asyncio.Event()
        self._forwarding.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._refusing = False
        self.connections = 0  # accepted so far
        self.refused = 0  # closed at once while refusing
        self.seen: list[bytes] | None = None  # set to a list: every chunk read (either way) is added to it

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not listening"
        return int(self._server.sockets[0].getsockname()[1])

    def blackhole(self) -> None:
        """Stop forwarding, both ways, on open and new connections; nothing is closed."""
        self._forwarding.clear()

    def forward(self) -> None:
        """Forward again, the held bytes first (and accept again after `refuse`)."""
        self._refusing = False
        self._forwarding.set()

    def refuse(self) -> None:
        """A server that went down: every open connection is cut, and each new one closed at once."""
        self._refusing = True
        for task in list(self._pumps):
            task.cancel()

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._refusing:
            self.refused += 1
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        pumps = [
            asyncio.create_task(self._pump(client_reader, server_writer)),
            asyncio.create_task(self._pump(server_reader, client_writer)),
        ]
        self._pumps.update(pumps)
        for task in pumps:
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.seen is not None:
                    self.seen.append(data)
                await self._forwarding.wait()
                writer.write(data)
                await writer.drain()
            await self._forwarding.wait()  # the end of the stream is held like the bytes before it
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
