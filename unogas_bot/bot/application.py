"""The bot's Application: PTB's, carrying our services and flushing the persistence after PTB's update."""

from __future__ import annotations

import time
from typing import Any

from telegram.ext import Application

from unogas_bot.bot import metrics
from unogas_bot.service.context import Services


class UnogasApplication(Application):
    """PTB's Application carrying our services (PTB's own class has __slots__ and takes no extras)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        # Set when this process lost the leadership (bot/leader.py): what it holds in memory must not be
        # written over what the new leader writes, so nothing more is written.
        self.fenced = False

    async def update_persistence(self) -> None:
        """PTB hands the changed data to the persistence, then it is flushed: storage/persistence.py notes
        changes in memory and writes them in one transaction when flushed. PTB calls this every
        `persistence.update_interval` seconds and when the application stops."""
        if self.fenced:
            return
        await super().update_persistence()
        if self.persistence is not None:
            measured = bool(getattr(self.persistence, "pending", 0))  # a write, not an idle tick
            start = time.perf_counter()
            try:
                await self.persistence.flush()  # an unreachable database is logged there and retried later
            except Exception as exc:
                await self.process_error(update=None, error=exc)
            finally:
                if measured:
                    metrics.FLUSH_SECONDS.observe(time.perf_counter() - start)
