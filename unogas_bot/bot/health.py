"""The operators' HTTP endpoints of `unogas-bot run` (METRICS_PORT, on METRICS_HOST, loopback by default):

- `/healthz`: the process is alive (its event loop answers): 200 "ok". For a liveness probe or a watchdog.
- `/readyz`: 200 when this process handles customers: it is the leader, the database answers and
  Telegram's Bot API answered its last request; 503 otherwise. The JSON body says which (`role`: leader,
  standby, starting, fenced; `database`, `bot_api`: true or false), so a load balancer sends webhook
  traffic to the leader only and an operator sees at a glance why an instance is not ready.
- `/metrics`: Prometheus' text format (metrics.py).

It runs in the bot's own event loop (tornado, as the webhook server): a check reads the bot's state where
it lives, and a blocked loop shows as a health check that does not answer, which is the truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import tornado.netutil
import tornado.web
from tornado.httpserver import HTTPServer

from unogas_bot.bot import metrics

log = logging.getLogger(__name__)

# Seconds the database check of /readyz may take: a scraper or a load balancer must get an answer.
DATABASE_CHECK_TIMEOUT = 1.5


@dataclass
class Probes:
    """What /readyz asks: this process's role, whether the database answers, whether the Bot API did."""

    role: Callable[[], str]
    database: Callable[[], Awaitable[bool]]
    bot_api: Callable[[], bool]


async def _database_ok(check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await asyncio.wait_for(check(), DATABASE_CHECK_TIMEOUT)
    except Exception:  # any failure is "not reachable": the body says so, the log need not
        return False


class _Health(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("ok\n")


class _Ready(tornado.web.RequestHandler):
    def initialize(self, probes: Probes) -> None:  # type: ignore[override]
        self.probes = probes

    async def get(self) -> None:
        role = self.probes.role()
        database = await _database_ok(self.probes.database)
        bot_api = self.probes.bot_api()
        ready = role == "leader" and database and bot_api
        self.set_status(200 if ready else 503)
        self.set_header("Content-Type", "application/json")
        body = {"ready": ready, "role": role, "database": database, "bot_api": bot_api}
        self.finish(json.dumps(body) + "\n")


class _Metrics(tornado.web.RequestHandler):
    def get(self) -> None:
        body, content_type = metrics.exposition()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def _quiet(handler: tornado.web.RequestHandler) -> None:
    """No access log: a scraper every 15 s would fill it."""


def start(probes: Probes, host: str, port: int) -> HTTPServer:
    """Listen on `host`:`port` in the running event loop; stop it with `stop()`."""
    app = tornado.web.Application(
        [
            (r"/healthz", _Health),
            (r"/readyz", _Ready, {"probes": probes}),
            (r"/metrics", _Metrics),
        ],
        log_function=_quiet,
    )
    server = HTTPServer(app)
    server.add_sockets(tornado.netutil.bind_sockets(port, address=host))
    log.info("health and metrics on http://%s:%d/ (healthz, readyz, metrics)", host, port)
    return server


async def stop(server: HTTPServer) -> None:
    server.stop()
    await server.close_all_connections()
