"""Long polling that confirms to Telegram only what is written down.

PTB's `Updater` confirms a batch with its next getUpdates as soon as the batch is on the update queue, before
it is handled: what a process holds in memory when it stops is gone. This loop asks for the next batch
(which confirms the last one) only once the last one is in the inbox (bot/inbox.py). If the inbox cannot be
written, the offset stays where it was and the same batch is fetched again, so Telegram keeps it for
whichever process writes it first.

Errors of getUpdates go to the Application's error handler (bot/wiring.py: a Conflict is one clear line) and
are retried after 1 s, 2 s, 4 s ... at most 30 s (or what flood control asks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import Application

from storage.db import database_unavailable
from storage.inbox import Superseded
from unogas_bot.bot.inbox import Inbox

log = logging.getLogger(__name__)

POLL_TIMEOUT = 10  # seconds Telegram holds a getUpdates open when nothing comes (PTB's default)
FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0


class Poller:
    """getUpdates → inbox → the Application's update queue, until stopped."""

    def __init__(
        self,
        app: Application,
        inbox: Inbox,
        allowed_updates: Sequence[str],
        *,
        timeout: int = POLL_TIMEOUT,
        on_superseded: Any = None,
    ) -> None:
        self.app = app
        self.inbox = inbox
        self.allowed_updates = list(allowed_updates)
        self.timeout = timeout
        self.on_superseded = on_superseded  # called with the reason when a newer leader exists
        self.offset = 0  # the next update to ask for; everything below it is in the inbox
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Poll until `stop()`: a getUpdates in progress is abandoned (what it would have returned stays
        unconfirmed at Telegram); a batch already received is written and queued first."""
        wait = FIRST_WAIT
        told = False
        while not self._stopping.is_set():
            fetch = asyncio.ensure_future(self._fetch())
            stopping = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch
                return
            try:
                updates = fetch.result()
            except TelegramError as exc:
                await self.app.process_error(update=None, error=exc)
                pause = _seconds(exc.retry_after) if isinstance(exc, RetryAfter) else wait
                wait = min(wait * 2, LONGEST_WAIT)
                await self._pause(pause)
                continue
            wait = FIRST_WAIT
            if not updates:
                continue
            try:
                new = await self.inbox.admit(updates, confirmed_below=self.offset or None)
            except Superseded as exc:
                if self.on_superseded is not None:
                    self.on_superseded(f"a newer leader took over ({exc})")
                return
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                # Not written, so not confirmed: fetched again, here or by the next leader.
                if not told:
                    log.warning("inbox: updates not written (%s); fetching them again", type(exc).__name__)
                told = True
                await self._pause(FIRST_WAIT)
                continue
            told = False
            self.offset = updates[-1].update_id + 1
            for update in new:
                self.app.update_queue.put_nowait(update)

    async def _fetch(self) -> tuple[Update, ...]:
        return await self.app.bot.get_updates(
            offset=self.offset or None, timeout=self.timeout, allowed_updates=self.allowed_updates
        )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def confirm(self) -> None:
        """Tell Telegram every queued update arrived (a last getUpdates that waits for nothing), as a
        clean stop does; a failure only means the next leader fetches them again and skips them."""
        if not self.offset:
            return
        try:
            await self.app.bot.get_updates(offset=self.offset, timeout=0, limit=1)
        except TelegramError as exc:
            log.debug("last confirmation to Telegram failed (%s)", type(exc).__name__)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
