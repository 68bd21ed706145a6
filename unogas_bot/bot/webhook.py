"""The HTTP server of `unogas-bot run --webhook-url`: receives Telegram's updates behind a reverse proxy.

PTB's own webhook server reads a whole request body (tornado allows 100 MB) before it looks at the secret
token, so anybody who finds the address could make the process buffer large bodies. Here the headers are
checked first: a request without the secret, or announcing a body over `MAX_BODY`, is answered and its
connection closed before any of the body is read; a chunked body stops being read at `MAX_BODY`.

Nor can connections exhaust the process's file table (issue 21): at most `MAX_CONNECTIONS` are open; a new
one beyond that closes the oldest still waiting for its request's headers (a half-open connection holds
nothing a legitimate sender needs, nor does one whose request lacks the secret: another path is answered
404 unread), and a connection gets `HEADER_TIMEOUT` to send them. Should accepting
fail anyway (the file table full for other reasons), accepting pauses for `ACCEPT_PAUSE` instead of
retrying at once, and the failure is logged, repeated identical lines folded into one with a count
(unogas_bot/security/log_repeats.py).
"""

from __future__ import annotations

import errno
import hmac
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Update
from telegram.ext import Application, ExtBot
from tornado import httputil, iostream
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop

from unogas_bot.bot import metrics

log = logging.getLogger(__name__)

# A Telegram update is a few kilobytes; 1 MiB is ample (Telegram's own limit for a text is 4,096 chars).
MAX_BODY = 1 << 20
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A client that sends its body slowly, or keeps a connection idle, does not hold it for long. Tornado waits
# for a request's headers as long as for the next request on a kept-alive connection: one timeout for both.
BODY_TIMEOUT = 10.0
HEADER_TIMEOUT = 10.0
# Telegram opens at most 40 connections at once (setWebhook's max_connections, 100 at most), a reverse proxy
# a few more: 256 leaves room and stays far below any file limit (LimitNOFILE in the systemd unit).
MAX_CONNECTIONS = 256
ACCEPT_PAUSE = 0.5  # seconds without accepting after the system refused a new connection a descriptor
# accept() errors that say the process or the system is out of descriptors or memory: retrying at once
# would only fail again, as fast as the event loop turns.
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@tornado.web.stream_request_body
class UpdateReceiver(tornado.web.RequestHandler):
    """One POST from Telegram: an update as JSON, put on the Application's update queue."""

    SUPPORTED_METHODS = ("POST",)  # type: ignore[assignment]

    def initialize(self, app: Application, secret: str) -> None:  # type: ignore[override]
        self.app = app
        self.secret = secret.encode()
        self.chunks: list[bytes] = []

    async def prepare(self) -> None:
        """Called once the headers are in and before any of the body is read (stream_request_body)."""
        given = self.request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self.secret):  # constant time: the secret is not guessable
            await self._refuse(HTTPStatus.FORBIDDEN)
            return
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            await self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)

    def data_received(self, chunk: bytes) -> None:
        # At most MAX_BODY bytes arrive here: the server closes a connection whose body grows beyond it.
        self.chunks.append(chunk)

    async def post(self) -> None:
        try:
            data = json.loads(b"".join(self.chunks))
            if not isinstance(data, dict):
                raise TypeError("an update is a JSON object")
            update = Update.de_json(data, self.app.bot)
        except Exception as exc:  # the body is not quoted: it is a customer's message
            log.warning("webhook: a request with the secret had no valid update (%s)", type(exc).__name__)
            self.send_error(HTTPStatus.BAD_REQUEST)
            return
        if isinstance(self.app.bot, ExtBot):
            self.app.bot.insert_callback_data(update)
        inbox = getattr(self.app, "inbox", None)
        if inbox is not None:
            # Written down before Telegram hears 200: otherwise Telegram sends it again later.
            try:
                new = await inbox.admit([update], [data])
            except Exception as exc:
                log.warning(
                    "webhook: update not written to the inbox (%s); Telegram will retry", type(exc).__name__
                )
                self.send_error(HTTPStatus.SERVICE_UNAVAILABLE)
                return
            if not new:  # delivered again, and taken already
                self.set_status(HTTPStatus.OK)
                return
        await self.app.update_queue.put(update)
        self.set_status(HTTPStatus.OK)

    async def _refuse(self, status: HTTPStatus) -> None:
        """Answer `status` and close the connection, so the rest of the body is never read."""
        self.set_status(status)
        await self.finish()
        self.request.connection.close()  # type: ignore[union-attr]


@tornado.web.stream_request_body
class NotHere(tornado.web.RequestHandler):
    """Any other path: answered 404 and closed on the headers, its body never read (tornado's own 404
    handler reads a whole body first, up to `MAX_BODY`, holding the connection and the memory)."""

    async def prepare(self) -> None:
        self.set_status(HTTPStatus.NOT_FOUND)
        await self.finish()
        self.request.connection.close()  # type: ignore[union-attr]


class CappedHTTPServer(HTTPServer):
    """Tornado's HTTP server with a cap on open connections and an accept loop that pauses when the
    system refuses it descriptors (see the module's docstring).

    A connection is "in a request", and never closed to make room, only while its request carries the
    secret (`secret`; None: any request): a request without it holds nothing a legitimate sender needs,
    whatever its headers say, so an outsider's requests never outrank Telegram's."""

    max_connections = MAX_CONNECTIONS
    accept_pause = ACCEPT_PAUSE
    secret: bytes | None = None

    def initialize(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(*args, **kwargs)
        self._open: dict[HTTP1ServerConnection, None] = {}  # the connections, oldest first
        self._busy: set[HTTP1ServerConnection] = set()  # those whose request's headers have arrived

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        if len(self._open) >= self.max_connections and not self._evict_one():
            metrics.WEBHOOK_CONNECTIONS_REFUSED.labels("all_busy").inc()
            log.warning(
                "webhook: %d connections open, all in a request: a new one was closed", len(self._open)
            )
            stream.close()
            return
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        self._open[conn] = None
        conn.start_serving(self)

    def _evict_one(self) -> bool:
        """Close the oldest connection still waiting for its request's headers; False if there is none."""
        victim = next((conn for conn in self._open if conn not in self._busy), None)
        if victim is None:
            return False
        del self._open[victim]
        victim.stream.close()
        metrics.WEBHOOK_CONNECTIONS_REFUSED.labels("evicted").inc()
        log.warning(
            "webhook: %d connections open (the cap): the oldest still waiting for its request was closed",
            self.max_connections,
        )
        return True

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        conn = server_conn  # a request starts (the next one on a kept-alive connection too): waiting again
        self._busy.discard(conn)  # type: ignore[arg-type]
        return _Tracked(super().start_request(server_conn, request_conn), self, conn)  # type: ignore[arg-type]

    def admits(self, headers: httputil.HTTPHeaders) -> bool:
        """Does a request with these headers carry the secret (any request, without one)?"""
        if self.secret is None:
            return True
        return hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), self.secret)

    def on_close(self, server_conn: object) -> None:
        self._open.pop(server_conn, None)  # type: ignore[call-overload]
        self._busy.discard(server_conn)  # type: ignore[arg-type]
        super().on_close(server_conn)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_from(sock)

    def _accept_from(self, sock: socket.socket) -> Callable[[], None]:
        """Accept connections on `sock` as tornado does, pausing when out of descriptors; returns the
        function that stops it (TCPServer.stop calls it)."""
        loop = IOLoop.current()
        state = {"stopped": False, "paused": False}

        def on_readable(fd: Any, events: int) -> None:
            for _ in range(128):  # tornado's batch: other work gets its turn between batches
                if state["stopped"] or state["paused"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in _OUT_OF_RESOURCES:
                        raise
                    metrics.WEBHOOK_CONNECTIONS_REFUSED.labels("accept_failed").inc()
                    log.error(
                        "webhook: the system refused a new connection (%s): accepting paused for %.1f s",
                        os.strerror(exc.errno),
                        self.accept_pause,
                    )
                    state["paused"] = True
                    loop.remove_handler(sock)
                    loop.call_later(self.accept_pause, resume)
                    return
                self._handle_connection(connection, address)

        def resume() -> None:
            if state["paused"] and not state["stopped"]:
                state["paused"] = False
                loop.add_handler(sock, on_readable, IOLoop.READ)

        def stop() -> None:
            if not state["paused"]:
                loop.remove_handler(sock)
            state["stopped"] = True

        loop.add_handler(sock, on_readable, IOLoop.READ)
        return stop


class _Tracked(httputil.HTTPMessageDelegate):
    """A request's delegate that marks its connection busy once headers with the secret are in."""

    def __init__(
        self, inner: httputil.HTTPMessageDelegate, server: CappedHTTPServer, conn: HTTP1ServerConnection
    ) -> None:
        self.inner, self.server, self.conn = inner, server, conn

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> Any:
        if self.server.admits(headers):
            self.server._busy.add(self.conn)
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Refusals are worth a line (someone probing the address); delivered updates are not."""
    status = handler.get_status()
    if status >= 400:
        log.info("webhook: answered %d to a request from %s", status, handler.request.remote_ip)


def start(app: Application, listen: str, port: int, path: str, secret: str) -> HTTPServer:
    """Listen on `listen`:`port` for updates posted to /`path`; stop it with `stop()`."""
    route = "/" + re.escape(path.strip("/")) + ("/?" if path.strip("/") else "")
    handlers: list[Any] = [(route, UpdateReceiver, {"app": app, "secret": secret})]
    server = CappedHTTPServer(
        tornado.web.Application(handlers, log_function=_log_request, default_handler_class=NotHere),
        max_body_size=MAX_BODY,  # the connection-level cap, whatever the handler does
        max_buffer_size=2 * MAX_BODY,
        body_timeout=BODY_TIMEOUT,
        idle_connection_timeout=HEADER_TIMEOUT,  # tornado's header timeout is this one
    )
    server.secret = secret.encode()
    server.listen(port, address=listen)
    return server


async def stop(server: HTTPServer) -> None:
    """Stop accepting requests and close the open connections."""
    server.stop()
    await server.close_all_connections()
