"""The bot's Application: PTB's, carrying our services and flushing the persistence after PTB's update."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from unogas_bot.service.context import Services


class UnogasApplication(Application):
    """PTB's Application carrying our services (PTB's own class has __slots__ and takes no extras)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def update_persistence(self) -> None:
        """PTB hands the changed data to the persistence, then it is flushed: storage/persistence.py notes
        changes in memory and writes them in one transaction when flushed. PTB calls this every
        `persistence.update_interval` seconds and when the application stops."""
        await super().update_persistence()
        if self.persistence is not None:
            try:
                await self.persistence.flush()  # an unreachable database is logged there and retried later
            except Exception as exc:
                await self.process_error(update=None, error=exc)
