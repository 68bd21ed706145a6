"""Repeated identical warnings and errors are logged once per interval, with a count (issue 21).

A fault that repeats as fast as the event loop turns (a full file table made every accept fail, and the log
grew by 421,074 lines in 30 s) must not fill the disk nor drown the one line that says what is wrong. The
first record of a kind is written as it is; identical ones (same logger, level, message and arguments,
and exception type) within `INTERVAL` are counted, not written; the first one after the interval is
written with "(N more like this in the last S s)". INFO and DEBUG records pass untouched, except those
anyone on the network can cause with a request (`BY_MESSAGE`): folded at every level, by message alone.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

INTERVAL = 60.0  # seconds
MAX_KINDS = 512  # kinds of record remembered (the oldest is forgotten first)
# Loggers whose records anyone on the network can cause, one per request (the webhook's refusals, tornado's
# "Malformed HTTP message from <address>"): folded at every level, and by their message alone, since the
# client's address in the arguments differs from one request to the next.
BY_MESSAGE = ("tornado.", "unogas_bot.bot.webhook")


class FoldRepeats(logging.Filter):
    """A handler filter: see the module's docstring."""

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval, self.clock = interval, clock
        # kind -> [when its last line was written, how many were held back since]
        self._seen: OrderedDict[tuple[Any, ...], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and not _by_message(record):
            return True
        kind = _kind(record)
        now = self.clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        if seen is not None and seen[1]:
            held, since = int(seen[1]), now - seen[0]
            record.msg = f"{record.msg} ({held} more like this in the last {since:.0f} s)"
        self._seen[kind] = [now, 0]
        self._seen.move_to_end(kind)
        while len(self._seen) > MAX_KINDS:
            self._seen.popitem(last=False)
        return True


def _by_message(record: logging.LogRecord) -> bool:
    return record.name.startswith(BY_MESSAGE)


def _kind(record: logging.LogRecord) -> tuple[Any, ...]:
    error = record.exc_info[1] if record.exc_info else None
    try:
        args = "" if _by_message(record) else repr(record.args)
    except Exception:  # a repr that fails must not lose the record
        args = "?"
    return (record.name, record.levelno, str(record.msg), args, type(error).__name__ if error else None)


def install(handler: logging.Handler) -> None:
    """Fold the handler's repeated warnings and errors (idempotent)."""
    if not any(isinstance(f, FoldRepeats) for f in handler.filters):
        handler.addFilter(FoldRepeats())
