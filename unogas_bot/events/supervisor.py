"""The reconnect loop the relay and the customer-event consumer share: run a broker session until it ends,
say each change of state once (not once per retry), wait with a doubling backoff, and stop for good with one
line when a newer leader took over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import aio_pika

from storage.inbox import Superseded
from unogas_bot.events.broker import BrokerUnreachable, reason

FIRST_BACKOFF = 0.5  # seconds before the first retry; doubled up to Settings.events_backoff_max

# An exception the caller knows: the state it puts the link in and the detail its line says, or None.
Classify = Callable[[Exception], tuple[str, str] | None]


class HasState(Protocol):
    state: str


def broker_state(exc: Exception) -> tuple[str, str] | None:
    """The broker could not be reached, or the connection to it was lost."""
    if isinstance(exc, BrokerUnreachable):
        return "unreachable", str(exc)
    if isinstance(exc, aio_pika.exceptions.AMQPError | OSError | ConnectionError | TimeoutError):
        return "unreachable", f"lost the broker (AMQP_URL): {reason(exc)}"
    return None


async def supervise(
    session: Callable[[], Awaitable[None]],
    *,
    stop: asyncio.Event,
    stats: HasState,
    say: Callable[[str, str], None],
    log: logging.Logger,
    name: str,
    fenced: str,
    backoff_max: Callable[[], float],
    classify: Classify = lambda exc: None,
    after_failure: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `session` again until `stop` is set. `say(state, detail)` reports a known failure (once per
    change, the caller's job); an unknown one is a bug, logged once with its frames as "`name`: failed";
    `Superseded` sets the state "fenced", logs "`name`: a newer leader took over (...); `fenced`" and ends."""
    backoff = FIRST_BACKOFF
    while not stop.is_set():
        try:
            await session()
            backoff = FIRST_BACKOFF
        except Superseded as exc:  # a newer leader does this now; this process is on its way out
            stats.state = "fenced"
            log.error("%s: a newer leader took over (%s); %s", name, exc, fenced)
            return
        except Exception as exc:
            known = classify(exc) or broker_state(exc)
            if known is not None:
                say(*known)
            else:  # a bug: said once, with its frames; the customers are not affected
                if stats.state != "error":
                    log.exception("%s: failed (%s); retrying", name, type(exc).__name__)
                stats.state = "error"
        if stop.is_set():
            break
        if after_failure is not None:
            await after_failure()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, backoff_max())
