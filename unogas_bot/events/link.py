"""The leader's link to the broker: the relay and the customer-event consumer, started once the process
leads and stopped before it lets the leadership go (bot/runner.py). Without AMQP_URL there is none: the
events stay in the outbox, bounded by the retention (bot/housekeeping.py)."""

from __future__ import annotations

import asyncio
import contextlib

from unogas_bot.events.broker import settings_names
from unogas_bot.events.inbound import Consumer
from unogas_bot.events.relay import Relay
from unogas_bot.service.context import Services

STOP_WAIT = 10.0  # seconds the relay may take to finish the batch in flight at shutdown


class EventsLink:
    def __init__(self, services: Services) -> None:
        url = services.settings.amqp_url
        if url is None:
            raise ValueError("AMQP_URL is not set")
        self.services = services
        names = settings_names(services.settings)
        self.relay = Relay(services, url, names)
        self.consumer = Consumer(services, url, names)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def start(cls, services: Services) -> EventsLink | None:
        """Start relaying and consuming in the running event loop (None without AMQP_URL)."""
        if services.settings.amqp_url is None:
            return None
        link = cls(services)
        services.db.audit_observers.append(link.relay.observe)  # a committed change wakes the relay
        link._tasks = [
            asyncio.ensure_future(link.relay.run()),
            asyncio.ensure_future(link.consumer.run()),
        ]
        return link

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.services.db.audit_observers.remove(self.relay.observe)
        self.relay.stop()
        await self.consumer.stop()
        _done, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
