"""The HTTP server of `unogas-bot run --webhook-url`: receives Telegram's updates behind a reverse proxy.

PTB's own webhook server reads a whole request body (tornado allows 100 MB) before it looks at the secret
token, so anybody who finds the address could make the process buffer large bodies. Here the headers are
checked first: a request without the secret, or announcing a body over `MAX_BODY`, is answered and its
connection closed before any of the body is read; a chunked body stops being read at `MAX_BODY`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Update
from telegram.ext import Application, ExtBot
from tornado.httpserver import HTTPServer

log = logging.getLogger(__name__)

# A Telegram update is a few kilobytes; 1 MiB is ample (Telegram's own limit for a text is 4,096 chars).
MAX_BODY = 1 << 20
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A client that sends its body slowly, or keeps a connection idle, does not hold it for long.
BODY_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0


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


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Refusals are worth a line (someone probing the address); delivered updates are not."""
    status = handler.get_status()
    if status >= 400:
        log.info("webhook: answered %d to a request from %s", status, handler.request.remote_ip)


def start(app: Application, listen: str, port: int, path: str, secret: str) -> HTTPServer:
    """Listen on `listen`:`port` for updates posted to /`path`; stop it with `stop()`."""
    route = "/" + re.escape(path.strip("/")) + ("/?" if path.strip("/") else "")
    handlers: list[Any] = [(route, UpdateReceiver, {"app": app, "secret": secret})]
    server = HTTPServer(
        tornado.web.Application(handlers, log_function=_log_request),
        max_body_size=MAX_BODY,  # the connection-level cap, whatever the handler does
        max_buffer_size=2 * MAX_BODY,
        body_timeout=BODY_TIMEOUT,
        idle_connection_timeout=IDLE_TIMEOUT,
    )
    server.listen(port, address=listen)
    return server


async def stop(server: HTTPServer) -> None:
    """Stop accepting requests and close the open connections."""
    server.stop()
    await server.close_all_connections()
