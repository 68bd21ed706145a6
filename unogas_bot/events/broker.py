"""The broker's names, connection and declarations, shared by the relay, the consumer and the CLI."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from yarl import URL

from unogas_bot.config import Settings

CONNECT_TIMEOUT = 5.0
# aiormq logs every failed connection attempt at ERROR, with its own wording: the relay, the consumer and the
# CLI report each failure themselves, once per change and naming AMQP_URL, so its lines would be a flood.
logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
# RabbitMQ's content type for a structured-mode CloudEvent.
CONTENT_TYPE = "application/cloudevents+json"


@dataclass(frozen=True)
class Names:
    """Exchange and queue names, each behind EVENTS_NAME_PREFIX (empty in production)."""

    prefix: str = ""

    @property
    def accounts(self) -> str:
        return f"{self.prefix}unogas.accounts"

    @property
    def customers(self) -> str:
        return f"{self.prefix}unogas.customers"

    @property
    def queue(self) -> str:
        return f"{self.prefix}unogas-bot.customers"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}unogas-bot.customers.dead"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}unogas-bot.customers.dlx"


class BrokerUnreachable(Exception):
    """One line naming AMQP_URL's host (never the URL: it holds a password) and the reason."""


def where(url: str) -> str:
    parsed = URL(url)
    return f"the broker at {parsed.host or 'localhost'}:{parsed.port or 5672} (AMQP_URL)"


def reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is RabbitMQ running, on that port?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "ACCESS_REFUSED" in text or "authentication" in text.lower():
        return "the user name or password was refused"
    if "PRECONDITION_FAILED" in text:  # someone declared our exchange or queue with other arguments
        detail = text.split("PRECONDITION_FAILED - ", 1)[-1]
        return (
            "an exchange or queue of ours exists on the broker with other settings; delete it (the bot "
            f"declares it again) or use EVENTS_NAME_PREFIX: {detail}"
        )[:400]
    if "Connection.OpenOk" in text and "Connection.Close" in text:  # RabbitMQ's answer to Connection.Open
        return (
            "the broker refused the virtual host (the URL's path: amqp://user:pass@host:5672/ is /): "
            "does it exist, and may this user use it?"
        )
    return f"{type(exc).__name__}: {text}"[:200]


async def connect(url: str, wait: float = CONNECT_TIMEOUT) -> aio_pika.abc.AbstractConnection:
    """A plain (not robust) connection: the relay and the consumer reconnect themselves, with backoff and
    one log line per change, rather than aio-pika's robust connection replaying in the background."""
    try:
        async with asyncio.timeout(wait):
            return await aio_pika.connect(url, timeout=wait)
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError) as exc:
        raise BrokerUnreachable(f"cannot reach {where(url)}: {reason(exc)}") from None


async def accounts_exchange(channel: AbstractChannel, names: Names) -> AbstractExchange:
    return await channel.declare_exchange(names.accounts, aio_pika.ExchangeType.TOPIC, durable=True)


async def customers_queue(channel: AbstractChannel, names: Names) -> AbstractQueue:
    """The CRM's exchange, the bot's durable queue bound to all of it, and its dead-letter queue (a
    message the consumer rejects goes there, through the dead-letter exchange)."""
    customers = await channel.declare_exchange(names.customers, aio_pika.ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(
        names.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead = await channel.declare_queue(names.dead_letters, durable=True)
    await dead.bind(dlx)
    queue = await channel.declare_queue(
        names.queue, durable=True, arguments={"x-dead-letter-exchange": names.dead_letter_exchange}
    )
    await queue.bind(customers, routing_key="#")  # every message, so a malformed one reaches the DLQ too
    return queue


def settings_names(settings: Settings) -> Names:
    return Names(settings.events_name_prefix)
