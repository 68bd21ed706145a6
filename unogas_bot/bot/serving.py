"""Serving Telegram once this process leads: long polling or the webhook, the waiting inbox first, and the
start-up calls retried while Telegram is unreachable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from unogas_bot.bot import metrics
from unogas_bot.bot import webhook as webhook_server
from unogas_bot.bot.polling import Poller
from unogas_bot.security import redaction

log = logging.getLogger(__name__)

# The updates the bot handles; Telegram does not send the others.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]

# Start-up calls to Telegram (getMe, setWebhook) are tried this often, waiting 1 s, 2 s, 4 s ... at most
# 30 s in between (about a minute and a half in all) before `run` gives up.
STARTUP_TRIES = 8
FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0


class StartupError(Exception):
    """Telegram could not be reached, or refused the bot: `run` ends with this one line."""


async def with_retries(
    what: str,
    call: Callable[[], Awaitable[object]],
    *,
    tries: int = STARTUP_TRIES,
    wait: float = FIRST_WAIT,
) -> None:
    """`call` until it succeeds, with a growing wait and one log line per failed try. Network errors,
    timeouts and flood control are retried; Telegram's refusals (bad token, bad request) are final."""
    for attempt in range(1, tries + 1):
        try:
            await call()
            return
        except TelegramError as exc:
            said = redaction.describe(exc)
            # BadRequest is a NetworkError in PTB, but it is Telegram's answer: final like the others.
            if not isinstance(exc, NetworkError | RetryAfter) or isinstance(exc, BadRequest):
                raise StartupError(f"Telegram refused {what}: {said}") from None
            if attempt == tries:
                raise StartupError(f"{what} failed {tries} times, the last with {said}") from None
            pause = _seconds(exc.retry_after) if isinstance(exc, RetryAfter) else wait
            log.warning("%s failed (try %d of %d: %s); next try in %g s", what, attempt, tries, said, pause)
            await asyncio.sleep(pause)
            wait = min(wait * 2, LONGEST_WAIT)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def reach_telegram(app: Application) -> None:
    """The first contact (getMe, which PTB's initialize makes), retried while Telegram is unreachable."""
    await with_retries("contacting the Telegram Bot API (getMe)", app.bot.initialize)


@dataclass(frozen=True)
class Webhook:
    """Where Telegram delivers updates: `url` is the public HTTPS address (a reverse proxy terminating TLS),
    which forwards to the bot's plain-HTTP server on `listen`:`port`. Only requests carrying `secret` in the
    X-Telegram-Bot-Api-Secret-Token header are accepted (unogas_bot/bot/webhook.py answers others 403)."""

    url: str
    secret: str = field(repr=False)
    listen: str = "127.0.0.1"
    port: int = 8443
    url_path: str | None = None  # the path the server answers on; default: the path of `url`

    @property
    def path(self) -> str:
        return (self.url_path if self.url_path is not None else urlsplit(self.url).path).strip("/")


async def replay_inbox(app: Application) -> int:
    """Queue the updates the last leader left waiting in the inbox (bot/inbox.py), before any new one:
    each chat's go first, in the order they arrived. Returns how many."""
    inbox = getattr(app, "inbox", None)
    if inbox is None:
        return 0
    updates = await inbox.replay(app.bot)
    for update in updates:
        app.update_queue.put_nowait(update)
    if updates:
        log.info("inbox: %d update(s) left waiting by the last leader are handled first", len(updates))
    metrics.INBOX_REPLAYED.inc(len(updates))
    return len(updates)


async def serve_polling(app: Application, stop: asyncio.Event) -> None:
    """Run `app` on long polling until `stop` is set: the waiting inbox first, then our own loop
    (bot/polling.py), which confirms a batch to Telegram only once it is in the inbox. On stop, the
    updates already taken are handled and saved before this returns (so a standby taking over answers
    nothing twice), then Telegram is told."""
    try:
        async with app:  # initialize (the saved conversations are loaded), and shutdown at the end
            if app.post_init is not None:
                await app.post_init(app)
            await with_retries("removing a webhook (deleteWebhook)", app.bot.delete_webhook)
            await replay_inbox(app)
            on_superseded = getattr(app, "on_superseded", None)
            poller = Poller(app, app.inbox, ALLOWED_UPDATES, on_superseded=on_superseded)  # type: ignore[attr-defined]
            await app.start()
            polling = asyncio.ensure_future(poller.run())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                poller.stop()
                await asyncio.gather(polling, return_exceptions=True)
                await app.stop()  # the queued updates are handled and saved
            await poller.confirm()
            polling.result()  # a failure of the loop itself ends `run` with its line
    finally:
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


async def serve_webhook(app: Application, hook: Webhook, stop: asyncio.Event) -> None:
    """Run `app` on the webhook until `stop` is set: our own server (unogas_bot/bot/webhook.py, which caps
    bodies before reading them, and writes each update to the inbox before answering Telegram) instead of
    PTB's run_webhook, with the same order of PTB's hooks; the waiting inbox goes first."""
    try:
        async with app:  # initialize, and shutdown at the end
            if app.post_init is not None:
                await app.post_init(app)
            await replay_inbox(app)
            # Listening before Telegram learns the URL: its first post finds the server ready.
            server = webhook_server.start(app, hook.listen, hook.port, hook.path, hook.secret)
            try:
                await with_retries(
                    "registering the webhook (setWebhook)",
                    lambda: app.bot.set_webhook(
                        url=hook.url, secret_token=hook.secret, allowed_updates=ALLOWED_UPDATES
                    ),
                )
                await app.start()
                try:
                    await stop.wait()
                finally:
                    await app.stop()
            finally:
                await webhook_server.stop(server)
    finally:
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
