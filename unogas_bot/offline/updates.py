"""The stand-in's queue of updates, with Telegram's getUpdates rules (served by http.py): updates numbered
in arrival order, an offset confirms, a second getUpdates ends the waiting one with a Conflict."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from unogas_bot.offline.markup import JSONDict

CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
# Longest wait a client may ask for (Telegram caps getUpdates' timeout at 50 s, so do we for replies).
LONGEST_WAIT = 50.0


class UpdateQueue:
    """Updates waiting for the bot, numbered in arrival order, with Telegram's getUpdates rules."""

    def __init__(self) -> None:
        self._updates: list[JSONDict] = []
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._poll: asyncio.Future[str] | None = None  # the getUpdates now waiting
        self.polls = 0  # getUpdates calls answered or waiting
        self.conflicts = 0  # getUpdates ended because another one came

    def put(self, update: JSONDict) -> int:
        """Queue an update; returns its id."""
        update["update_id"] = next(self._ids)
        self._updates.append(update)
        self._wake()
        return int(update["update_id"])

    @property
    def pending(self) -> int:
        return len(self._updates)

    @property
    def waiting(self) -> bool:
        """Is a getUpdates waiting for updates now?"""
        return self._poll is not None and not self._poll.done()

    def first(self) -> JSONDict | None:
        return self._updates[0] if self._updates else None

    def confirm(self, offset: int) -> None:
        """Forget every update before `offset` (Telegram: the client has processed them)."""
        self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def clear(self) -> None:
        self._updates.clear()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_more(self, seconds: float) -> None:
        """Return when an update is queued, or after `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def get(self, offset: int, limit: int, wait: float, gone: asyncio.Event) -> list[JSONDict] | str:
        """Updates from `offset` on, waiting up to `wait` seconds for one; or a Conflict description when
        another getUpdates ends this one. `gone` is set when the client hung up (no conflict then)."""
        self.polls += 1
        if offset:
            self.confirm(offset)
        if self._poll is not None and not self._poll.done():
            self.conflicts += 1
            self._poll.set_result(CONFLICT_OTHER_POLL)
        poll: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._poll = poll
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(wait, LONGEST_WAIT))
        try:
            while True:
                ready = [u for u in self._updates if u["update_id"] >= offset][: max(1, min(limit, 100))]
                if ready or loop.time() >= deadline or gone.is_set():
                    return ready
                changed = asyncio.ensure_future(self._changed.wait())
                hung_up = asyncio.ensure_future(gone.wait())
                try:
                    await asyncio.wait(
                        {changed, hung_up, poll},
                        timeout=deadline - loop.time(),
                        return_when="FIRST_COMPLETED",
                    )
                finally:
                    changed.cancel()
                    hung_up.cancel()
                if poll.done():
                    return poll.result()
        finally:
            if self._poll is poll:
                self._poll = None
