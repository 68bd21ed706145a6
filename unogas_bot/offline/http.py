"""The stand-in over HTTP: the offline Bot API served on a local port, and users played through HTTP.

In process, the bot reaches :class:`OfflineBotAPI` through a request backend (request.py). Real
`unogas-bot run` processes cannot: they talk HTTP to `TELEGRAM_API_BASE_URL`. So this server answers
`/bot<token>/<method>` as Telegram does (form, multipart, JSON or query parameters; Telegram's JSON
envelopes and status codes) and adds what only Telegram's side can do:

- **Updates** wait in one queue, numbered in arrival order. `getUpdates` long-polls them with Telegram's
  rules: an `offset` confirms (forgets) every update before it, so an update handed to a process that died
  before confirming it is handed out again to the next poller; a second `getUpdates` while one is waiting
  ends the older one with 409 "Conflict: terminated by other getUpdates request" (counted in
  `/standin/status`: a failover test checks that only one process polls). With a webhook set (`setWebhook`)
  updates are posted to it, with its secret token, one at a time, and `getUpdates` is refused as Telegram
  refuses it.
- **Users**, under `/standin/`: `POST /standin/users/<id>/send {"text": ...}` (also `press {"button": label}`,
  `contact {"phone_number": ...}`) queues the update a Telegram client would produce;
  `GET /standin/users/<id>/replies?after=N&wait=S` returns the bot's messages in that chat after the first
  N, waiting up to S seconds for one; `GET /standin/status` says who polled and what is queued.

Loopback by default: the server has no authentication beyond the bot token it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from typing import Any

import tornado.netutil
import tornado.web
from telegram.error import NetworkError
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer

from unogas_bot.offline.markup import JSONDict, keyboard_labels
from unogas_bot.offline.request import _STRING_PARAMS
from unogas_bot.offline.server import OfflineBotAPI
from unogas_bot.offline.sim_user import SimUser
from unogas_bot.offline.simulator import Simulator
from unogas_bot.offline.updates import LONGEST_WAIT, UpdateQueue

log = logging.getLogger(__name__)

CONFLICT_WEBHOOK = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"  # noqa: E501 (Telegram's words)
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Methods after which a waiting `replies` request looks again.
_CHAT_CHANGES = frozenset({"sendmessage", "editmessagetext", "editmessagereplymarkup", "deletemessage"})
WEBHOOK_RETRY = 1.0  # seconds before a refused webhook delivery is tried again


def bot_id_of(token: str | None, default: int = 1000001) -> int:
    """The bot id a token names (Telegram's tokens start with it: "123456:ABC..."), else `default`."""
    head = (token or "").partition(":")[0]
    return int(head) if head.isdigit() else default


class RemoteUsers(Simulator):
    """The simulator's users, whose actions are queued for a bot that polls or has a webhook instead of
    being fed to an Application in this process (the update JSON is the simulator's, built by SimUser)."""

    def __init__(self, api: OfflineBotAPI, updates: UpdateQueue) -> None:  # no Application here
        self.api = api
        self.updates = updates
        self._callback_ids = itertools.count(1)
        self._started = True
        self.users: dict[int, SimUser] = {}
        self.last_update_id = 0

    async def process(self, data: JSONDict) -> None:
        """Queue the update for the bot (it gets its id here, in arrival order)."""
        self.last_update_id = self.updates.put(data)

    def get(self, user_id: int, details: JSONDict) -> SimUser:
        """The user `user_id`, made at the first action with `details` (first_name, language_code, ...)."""
        if user_id not in self.users:
            fields = {k: details[k] for k in ("first_name", "last_name", "language_code") if k in details}
            self.users[user_id] = self.user(user_id, **fields)
        return self.users[user_id]


class StandInHttp:
    """The HTTP stand-in's state: the Bot API (`api`), the update queue and the users (see the module)."""

    def __init__(self, api: OfflineBotAPI | None = None, token: str | None = None) -> None:
        self.token = token
        self.api = api or OfflineBotAPI(bot_id=bot_id_of(token))
        self.updates = UpdateQueue()
        self.users = RemoteUsers(self.api, self.updates)
        self.calls: dict[str, int] = {}  # Bot API method -> calls
        self._webhook_secret = ""
        self._delivery: asyncio.Task[None] | None = None
        self._sent_changed = asyncio.Event()

    def accepts(self, token: str) -> bool:
        return self.token is None or token == self.token

    def call(self, method: str, params: JSONDict) -> tuple[int, JSONDict]:
        """One Bot API call other than getUpdates; a webhook change starts or stops the delivery."""
        self.calls[method] = self.calls.get(method, 0) + 1
        status, answer = self.api.call(method, params)
        key = method.lower()
        if status == 200 and key == "setwebhook":
            self._webhook_secret = str(params.get("secret_token") or "")
            if params.get("drop_pending_updates"):
                self.updates.clear()
            self._start_delivery()
        elif status == 200 and key == "deletewebhook" and params.get("drop_pending_updates"):
            self.updates.clear()
        if status == 200 and key in (
            "sendmessage",
            "editmessagetext",
            "deletemessage",
            "editmessagereplymarkup",
        ):
            self._sent_changed.set()
            self._sent_changed = asyncio.Event()
        return status, answer

    async def get_updates(self, params: JSONDict, gone: asyncio.Event) -> tuple[int, JSONDict]:
        self.calls["getUpdates"] = self.calls.get("getUpdates", 0) + 1
        if self.api.webhook_url:
            return 409, {"ok": False, "error_code": 409, "description": CONFLICT_WEBHOOK}
        result = await self.updates.get(
            _as_int(params.get("offset"), 0),
            _as_int(params.get("limit"), 100),
            float(_as_int(params.get("timeout"), 0)),
            gone,
        )
        if isinstance(result, str):
            return 409, {"ok": False, "error_code": 409, "description": result}
        return 200, {"ok": True, "result": result}

    async def replies(self, chat_id: int, after: int, wait: float) -> list[JSONDict]:
        """The bot's messages to `chat_id` after the first `after`, waiting up to `wait` s for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(wait, LONGEST_WAIT))
        while True:
            sent = self.api.messages_to(chat_id)[after:]
            if sent or loop.time() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sent_changed.wait(), deadline - loop.time())
        return [
            {
                "index": after + i,
                "message_id": s.message_id,
                "text": s.plain_text,
                "buttons": keyboard_labels(s.reply_markup),
                "deleted": self.api.is_deleted(chat_id, s.message_id),
            }
            for i, s in enumerate(sent)
        ]

    def status(self) -> JSONDict:
        return {
            "bot": self.api.bot_user,
            "pending_updates": self.updates.pending,
            "get_updates": {"calls": self.updates.polls, "conflicts": self.updates.conflicts},
            "webhook_url": self.api.webhook_url,
            "calls": dict(self.calls),
        }

    # --- webhook delivery ------------------------------------------------------------------------------

    def _start_delivery(self) -> None:
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.ensure_future(self._deliver())

    async def _deliver(self) -> None:
        """Post the queued updates to the webhook in order, one at a time, while a webhook is set; a
        refused or failed post is tried again (Telegram retries for a day; here until it is taken)."""
        client = AsyncHTTPClient()
        while self.api.webhook_url:
            update = self.updates.first()
            if update is None:
                await self.updates.wait_for_more(WEBHOOK_RETRY)
                continue
            headers = {"Content-Type": "application/json"}
            if self._webhook_secret:
                headers[WEBHOOK_SECRET_HEADER] = self._webhook_secret
            try:
                await client.fetch(
                    self.api.webhook_url,
                    method="POST",
                    body=json.dumps(update),
                    headers=headers,
                    request_timeout=10,
                )
            except (HTTPClientError, OSError) as exc:
                log.info("webhook delivery of update %s failed (%s)", update["update_id"], type(exc).__name__)
                await asyncio.sleep(WEBHOOK_RETRY)
                continue
            self.updates.confirm(int(update["update_id"]) + 1)

    async def close(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _decode(raw: dict[str, str]) -> JSONDict:
    """Form or query parameters as the Bot API reads them: String-typed ones verbatim, the others JSON
    (PTB encodes numbers, booleans and objects such as reply_markup as JSON)."""
    params: JSONDict = {}
    for name, value in raw.items():
        if name in _STRING_PARAMS:
            params[name] = value
            continue
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


class _Handler(tornado.web.RequestHandler):
    def initialize(self, standin: StandInHttp) -> None:  # type: ignore[override]
        self.standin = standin

    def send_json(self, status: int, body: object) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))

    def json_body(self) -> JSONDict:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except ValueError:
            raise tornado.web.HTTPError(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise tornado.web.HTTPError(400, "the body is not a JSON object")
        return data


class BotApiHandler(_Handler):
    """`/bot<token>/<method>`, GET or POST, as Telegram serves it."""

    def initialize(self, standin: StandInHttp) -> None:  # type: ignore[override]
        super().initialize(standin)
        self.gone = asyncio.Event()

    def on_connection_close(self) -> None:
        self.gone.set()  # a long poll of a client that hung up (or died) is no conflict

    def _params(self) -> JSONDict:
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            return self.json_body()
        raw = {k: v[-1].decode("utf-8", "replace") for k, v in self.request.arguments.items() if v}
        return _decode(raw)

    async def get(self, token: str, method: str) -> None:
        await self.post(token, method)

    async def post(self, token: str, method: str) -> None:
        if not self.standin.accepts(token):
            self.send_json(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        params = self._params()
        if method.lower() == "getupdates":
            status, answer = await self.standin.get_updates(params, self.gone)
            if self.gone.is_set():
                return
        else:
            try:
                status, answer = self.standin.call(method, params)
            except NetworkError:  # an injected network fault: the connection breaks, no answer
                self.request.connection.close()  # type: ignore[union-attr]
                return
        self.send_json(status, answer)


class UserHandler(_Handler):
    """`/standin/users/<id>/<action>`: what a Telegram user does in the private chat with the bot."""

    async def post(self, user_id: str, action: str) -> None:
        body = self.json_body()
        user = self.standin.users.get(int(user_id), body)
        try:
            if action == "send":
                await user.send(str(body.get("text") or ""))
            elif action == "press":
                await user.press(str(body.get("button") or ""))
            elif action == "contact":
                await user.share_contact(str(body.get("phone_number") or ""))
            else:
                raise tornado.web.HTTPError(404)
        except (ValueError, LookupError) as exc:
            self.send_json(400, {"ok": False, "description": str(exc)})
            return
        self.send_json(200, {"ok": True, "update_id": self.standin.users.last_update_id})

    async def get(self, user_id: str, action: str) -> None:
        if action != "replies":
            raise tornado.web.HTTPError(404)
        after = _as_int(self.get_argument("after", "0"), 0)
        wait = float(self.get_argument("wait", "0") or 0)
        replies = await self.standin.replies(int(user_id), after, wait)
        self.send_json(200, {"ok": True, "replies": replies})


class StatusHandler(_Handler):
    def get(self) -> None:
        self.send_json(200, self.standin.status())


def make_app(standin: StandInHttp) -> tornado.web.Application:
    args = {"standin": standin}
    return tornado.web.Application(
        [
            (r"/bot([^/]+)/([A-Za-z]+)/?", BotApiHandler, args),
            (r"/standin/users/(\d+)/(send|press|contact|replies)", UserHandler, args),
            (r"/standin/status", StatusHandler, args),
        ],
        log_function=_quiet,
    )


def _quiet(handler: tornado.web.RequestHandler) -> None:
    """No access log: every long poll would be a line."""


def start(standin: StandInHttp, host: str = "127.0.0.1", port: int = 0) -> tuple[HTTPServer, int]:
    """Listen on `host`:`port` (0: any free port); returns the server and the port it got."""
    server = HTTPServer(make_app(standin))
    sockets = tornado.netutil.bind_sockets(port, address=host)
    server.add_sockets(sockets)
    return server, int(sockets[0].getsockname()[1])


async def stop(server: HTTPServer, standin: StandInHttp) -> None:
    server.stop()
    await standin.close()
    await server.close_all_connections()
