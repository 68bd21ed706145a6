"""PTB's side of the stand-in: a request backend that hands Bot API calls to an :class:`OfflineBotAPI`.

With it the real ``Application`` runs unchanged (the same bot, handlers, error handling and retries as in
production) and only the network is replaced; PTB's own ``BaseRequest`` turns the server's answers into
``telegram.error`` exceptions, so the bot sees exactly what it would see from Telegram.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, RequestData

from unogas_bot.offline.markup import JSONDict
from unogas_bot.offline.server import OfflineBotAPI

DEFAULT_TOKEN: Final = "123456:OFFLINE-TOKEN"
UPLOADS: Final = "_uploads"  # where do_request puts the uploaded files: part name -> (file name, bytes)

# Parameters Telegram declares as String: they must not be JSON-decoded (the text "123" stays a string).
_STRING_PARAMS: Final = frozenset(
    {
        "text",
        "parse_mode",
        "callback_query_id",
        "url",
        "language_code",
        "action",
        "caption",
        "inline_message_id",
        "description",
        "short_description",
        "name",
        "secret_token",
        "ip_address",
        "business_connection_id",
        "message_effect_id",
        "emoji",
        "certificate",
    }
)


def decode_request_params(request_data: RequestData | None) -> JSONDict:
    """Decode PTB's wire format the way the Bot API server does.

    PTB sends ``RequestData.json_parameters``: strings as they are, everything else (ints, bools, dicts,
    lists such as ``reply_markup``) JSON-encoded. String-typed parameters are kept verbatim.
    """
    if request_data is None:
        return {}
    params: JSONDict = {}
    for name, raw in request_data.json_parameters.items():
        if name in _STRING_PARAMS:
            params[name] = raw
            continue
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw  # e.g. chat_id="@channelname"
    return params


class StandInRequest(BaseRequest):
    """PTB request backend that answers from an :class:`OfflineBotAPI` instead of the network.

    Returns ``(status, json bytes)`` so PTB's ``BaseRequest._request_wrapper`` maps statuses to exceptions
    exactly as with Telegram: 400 BadRequest, 403 Forbidden, 404/401 InvalidToken, 429 RetryAfter
    (from ``parameters.retry_after``). After :meth:`shutdown` calls fail like a closed HTTPXRequest
    (RuntimeError, which PTB wraps in NetworkError).
    """

    __slots__ = ("_closed", "_read_timeout", "api")

    def __init__(self, api: OfflineBotAPI, read_timeout: float | None = 5.0) -> None:
        self.api = api
        self._read_timeout = read_timeout
        self._closed = False

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        self._closed = False

    async def shutdown(self) -> None:
        self._closed = True

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._closed:
            raise RuntimeError("This StandInRequest is not initialized!")
        api_method = url.rstrip("/").rsplit("/", 1)[-1]
        params = decode_request_params(request_data)
        if request_data is not None and request_data.contains_files:
            # Uploaded files travel as multipart parts; a parameter names its part as "attach://<part>".
            params[UPLOADS] = {
                name: (part[0], part[1]) for name, part in (request_data.multipart_data or {}).items()
            }
        await asyncio.sleep(self.api.latency)
        if api_method.lower() == "getupdates" and params.get("timeout"):
            # A long poll that returns nothing: wait a little so a polling Updater does not spin.
            await asyncio.sleep(min(float(params["timeout"]), 0.05))
        status, answer = self.api.call(api_method, params)
        return status, json.dumps(answer).encode("utf-8")


def offline_builder(
    api: OfflineBotAPI, token: str = DEFAULT_TOKEN, *, with_updater: bool = False
) -> ApplicationBuilder:
    """An ApplicationBuilder wired to ``api``; add persistence etc., then ``.build()``.

    Without an updater by default (the :class:`Simulator` feeds updates); ``with_updater=True`` keeps PTB's
    Updater, e.g. to run its real webhook server on loopback against the stand-in.
    """
    builder = (
        Application.builder()
        .token(token)
        .request(StandInRequest(api))
        .get_updates_request(StandInRequest(api))
    )
    return builder if with_updater else builder.updater(None)
