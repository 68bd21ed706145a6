"""What `/metrics` shows (Prometheus text format, prometheus-client): the bot's work, its failures and its
waits, so an operator can alert on them.

No label carries personal data: every label value comes from a fixed set named in this module (update
kinds, audit event names mapped to reasons, error kinds, Bot API method names), never from a message, a
user or a customer. Counters are process-wide (the default registry, which also brings the standard
`process_*` metrics); the gauges that read the running bot are attached by `watch_application`.

Where the figures come from, without the layers below knowing about Prometheus:

- registrations, logins, recoveries, refused attempts, lockouts and identity-check failures: the audit
  events the use cases write (service/), counted when their transaction commits (`watch_database`), so a
  figure never counts what was rolled back, and is exactly what `accounts show` lists;
- database errors and timeouts: SQLAlchemy's error event on the bot's engine, and the errors that reach
  the error handler (app.py);
- updates, reply latency and conversations in flight: the update processor (update_processor.py) and the
  Application; bcrypt: `MeasuredHasher`; Bot API requests: `ObservedRequest`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from telegram.error import NetworkError
from telegram.ext import Application, ConversationHandler
from telegram.request import HTTPXRequest

from storage.db import Database
from unogas_bot.clock import utcnow
from unogas_bot.security.hashing import Hasher

PREFIX = "unogas"
# A `_created` sample per series doubles the output and tells an operator nothing they need.
disable_created_metrics()

UPDATES = Counter(f"{PREFIX}_updates", "Updates handled, by kind", ["kind"])
UPDATES_DROPPED = Counter(f"{PREFIX}_updates_dropped", "Updates dropped: their chat sent too many at once")
REPLY_SECONDS = Histogram(
    f"{PREFIX}_reply_seconds",
    "From an update's arrival to the end of its handling (replies sent), its chat's turn included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
REGISTRATIONS = Counter(f"{PREFIX}_registrations", "Profiles saved (registrations completed)")
LOGINS = Counter(f"{PREFIX}_logins", "Successful logins")
RECOVERIES = Counter(f"{PREFIX}_recoveries", "Passwords changed through recovery")
FAILURES = Counter(f"{PREFIX}_failures", "Refused attempts and failed updates, by reason", ["reason"])
LOCKOUTS = Counter(f"{PREFIX}_lockouts", "Locks imposed by the account protection, by kind", ["kind"])
IDENTITY_FAILURES = Counter(
    f"{PREFIX}_identity_check_failures", "CustomerRecord checks that did not match, by flow", ["flow"]
)
BCRYPT_SECONDS = Histogram(
    f"{PREFIX}_bcrypt_seconds",
    "bcrypt hash or check, from request to result (waiting for a worker included), by operation",
    ["op"],
    buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10),
)
DATABASE_ERRORS = Counter(f"{PREFIX}_database_errors", "Database errors, by kind", ["kind"])
FLUSH_SECONDS = Histogram(
    f"{PREFIX}_persistence_flush_seconds",
    "Writing the conversation state noted since the last write (one transaction)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 15),
)
BOT_API_REQUESTS = Counter(
    f"{PREFIX}_bot_api_requests", "Bot API requests, by method and outcome", ["method", "outcome"]
)
LEADER = Gauge(f"{PREFIX}_leader", "1 while this process is the leader (handles updates), 0 as a standby")
WEBHOOK_CONNECTIONS_REFUSED = Counter(
    f"{PREFIX}_webhook_connections_refused",
    "Webhook connections closed by the cap (evicted: the oldest waiting for headers; all_busy: the new one)"
    " or not accepted (accept_failed: no descriptor), by reason",
    ["reason"],
)
OWNER_ALERTS = Counter(
    f"{PREFIX}_owner_alerts", "Profile owners told that other Telegram accounts failed checks against them"
)
# Which code runs, as the usual `*_build_info` gauge: always 1, the version in its label (a dashboard
# joins it to tell a deploy half-done; an alert rule finds two versions at once).
BUILD_INFO = Gauge(f"{PREFIX}_build_info", "The running code: its version in the label, value 1", ["version"])


def _version() -> str:
    """The installed distribution's version (pyproject.toml); "unknown" for a source tree not installed."""
    try:
        return importlib.metadata.version("unogas-bot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO.labels(_version()).set(1)
INBOX_REPLAYED = Counter(
    f"{PREFIX}_inbox_replayed",
    "Updates a takeover started from: left waiting in the inbox by the last leader",
)
INBOX_DUPLICATES = Counter(
    f"{PREFIX}_inbox_duplicates",
    "Updates delivered again (Telegram, or a new leader's fetch) and not handled again",
)

# Audit events (service/ and storage/accounts.py) -> what they count. Unknown events count nowhere.
_COUNTED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "registered": (REGISTRATIONS, ()),
    "login": (LOGINS, ()),
    "password_recovered": (RECOVERIES, ()),
    "login_failed": (FAILURES, ("login_failed",)),
    "registration_email_in_use": (FAILURES, ("registration_email_in_use",)),
    "recovery_failed": (FAILURES, ("recovery_wrong_answer",)),
    "login_locked": (LOCKOUTS, ("login_address",)),
    "login_throttled": (LOCKOUTS, ("login_user",)),
    "recovery_locked": (LOCKOUTS, ("recovery",)),
    "registration_identity_failed": (IDENTITY_FAILURES, ("registration",)),
    "owner_alerted": (OWNER_ALERTS, ()),
    "login_strangers_held": (LOCKOUTS, ("login_strangers",)),
    "recovery_strangers_held": (LOCKOUTS, ("recovery_strangers",)),
    "recovery_identity_failed": (IDENTITY_FAILURES, ("recovery",)),
}
# Every known series from the start, at 0: a rate or an alert needs the series before its first event.
_FAILURE_REASONS = (
    "login_failed",
    "registration_email_in_use",
    "recovery_wrong_answer",
    "database_unavailable",
    "telegram_unavailable",
    "telegram_blocked",
    "telegram_conflict",
    "internal_error",
)
# The children of the per-update counter, made once: `labels()` takes a lock and builds a key at each call,
# and this one counts every update.
_UPDATE_COUNTS = {kind: UPDATES.labels(kind) for kind in ("message", "edited_message", "callback_query")}
for _reason in _FAILURE_REASONS:
    FAILURES.labels(_reason)
for _kind in ("login_address", "login_user", "recovery", "login_strangers", "recovery_strangers"):
    LOCKOUTS.labels(_kind)
for _reason in ("evicted", "all_busy", "accept_failed"):
    WEBHOOK_CONNECTIONS_REFUSED.labels(_reason)
for _flow in ("registration", "recovery"):
    IDENTITY_FAILURES.labels(_flow)
for _kind in ("timeout", "pool_timeout", "connection", "error"):
    DATABASE_ERRORS.labels(_kind)
for _op in ("hash", "verify"):
    BCRYPT_SECONDS.labels(_op)
# PostgreSQL's SQLSTATEs of a statement that ran out of time (statement_timeout, lock_timeout).
_TIMED_OUT_SQLSTATES = frozenset({"57014", "55P03"})


def count_update(update: object) -> None:
    """One more update handled, counted by its kind."""
    kind = update_kind(update)
    (_UPDATE_COUNTS.get(kind) or UPDATES.labels(kind)).inc()


def update_kind(update: object) -> str:
    """The kind of an update, from the fixed set the bot is sent (ALLOWED_UPDATES) or "other"."""
    for kind in ("message", "edited_message", "callback_query"):
        if getattr(update, kind, None) is not None:
            return kind
    return "other"


def count_audit_event(name: str) -> None:
    counted = _COUNTED.get(name)
    if counted is None:
        return
    metric, labels = counted
    (metric.labels(*labels) if labels else metric).inc()


def watch_database(db: Database) -> None:
    """Count the audit events committed through `db` (a rolled-back one never counts) and its errors.

    The events come from the database's audit observers, called after each commit, not from a cursor
    event: listening to every statement would take the Lookups off their one-call path (storage/db.py).
    Installed once per database."""
    if count_audit_event in db.audit_observers:
        return
    db.audit_observers.append(count_audit_event)
    event.listen(db.engine.sync_engine, "handle_error", _count_database_error)


def _count_database_error(context: ExceptionContext) -> None:
    DATABASE_ERRORS.labels(database_error_kind(context.original_exception, context.is_disconnect)).inc()


def database_error_kind(error: BaseException, disconnect: bool = False) -> str:
    """ "timeout" (the statement ran out of time, or the pool had no connection), "connection" (the database
    could not be reached or the connection broke) or "error" (anything else: a constraint, a bug)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(error, TimeoutError | asyncio.TimeoutError | PoolTimeout):
        return "timeout"
    orig = getattr(error, "orig", error)
    if getattr(orig, "sqlstate", None) in _TIMED_OUT_SQLSTATES or isinstance(orig, TimeoutError):
        return "timeout"
    if disconnect or isinstance(error, ConnectionError | OSError):
        return "connection"
    return "error"


class MeasuredHasher(Hasher):
    """The bot's Hasher, measuring each hash and check and how many wait for a worker."""

    def __init__(self, rounds: int = 12, workers: int = 1) -> None:
        super().__init__(rounds, workers)
        self.workers = max(1, workers)
        self.in_flight = 0

    @property
    def queue_depth(self) -> int:
        """bcrypt operations waiting for a worker: those in flight beyond the workers."""
        return max(0, self.in_flight - self.workers)

    async def hash(self, secret: str) -> str:
        return await self._measured("hash", super().hash(secret))

    async def verify(self, secret: str, hashed: str | None) -> bool:
        return await self._measured("verify", super().verify(secret, hashed))

    async def _measured(self, op: str, work: Any) -> Any:
        self.in_flight += 1
        start = time.perf_counter()
        try:
            return await work
        finally:
            self.in_flight -= 1
            BCRYPT_SECONDS.labels(op).observe(time.perf_counter() - start)


class ObservedRequest(HTTPXRequest):
    """PTB's HTTP backend, remembering whether the Bot API answered lately (for /readyz) and counting
    requests by method and outcome (for /metrics)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_answer: float | None = None  # monotonic time of the last request Telegram answered
        self.last_failure: float | None = None  # ... of the last one that got no answer
        # Asked before each request (`run`: the leadership's confirmation): a process that can no longer
        # prove it leads sends nothing, its replies would come from a leader that is not one any more.
        self.gate: Callable[[], Awaitable[bool]] | None = None

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        api_method = url.rstrip("/").rsplit("/", 1)[-1]
        api_method = api_method if api_method.isalpha() and len(api_method) <= 40 else "other"
        if self.gate is not None and not await self.gate():
            BOT_API_REQUESTS.labels(api_method, "not_leader").inc()
            raise NetworkError("not sent: this process no longer leads")
        try:
            status, body = await super().do_request(url, method, *args, **kwargs)
        except Exception:
            self.last_failure = time.monotonic()
            BOT_API_REQUESTS.labels(api_method, "no_answer").inc()
            raise
        self.last_answer = time.monotonic()
        BOT_API_REQUESTS.labels(api_method, "ok" if status < 400 else str(status)).inc()
        return status, body

    def reachable(self) -> bool | None:
        """Did the last request get an answer (whatever it said)? None before the first request."""
        if self.last_answer is None and self.last_failure is None:
            return None
        return (self.last_answer or 0) >= (self.last_failure or 0)


def bot_api_reachable(*requests: ObservedRequest) -> bool:
    """Telegram answered the latest request of any of these backends (the one that spoke last decides)."""
    seen = [(r.last_answer or 0, r.last_failure or 0) for r in requests if r.reachable() is not None]
    if not seen:
        return False
    answered = max(a for a, _ in seen)
    failed = max(f for _, f in seen)
    return answered >= failed


class _RunningBot(Collector):
    """Gauges read from the running bot at each scrape (in the event loop's thread: the health server runs
    there, so the dictionaries read here do not change meanwhile)."""

    def __init__(self, app: Application, hasher: MeasuredHasher | None) -> None:
        self.app = app
        self.hasher = hasher

    def collect(self) -> Any:
        flows = GaugeMetricFamily(
            f"{PREFIX}_conversations_in_flight",
            "Open conversations (a question awaits an answer), by flow",
            labels=["flow"],
        )
        for group in self.app.handlers.values():
            for handler in group:
                if isinstance(handler, ConversationHandler) and handler.name:
                    # PTB keeps the open conversations in this dict (housekeeping.py reads it too).
                    flows.add_metric([handler.name], len(handler._conversations))
        yield flows
        persistence = self.app.persistence
        pending = getattr(persistence, "pending", None)
        if isinstance(pending, int):
            yield GaugeMetricFamily(
                f"{PREFIX}_persistence_pending", "Conversation-state rows noted but not yet written", pending
            )
        processor = self.app.update_processor
        busy = getattr(processor, "busy_chats", None)
        if callable(busy):
            yield GaugeMetricFamily(f"{PREFIX}_busy_chats", "Chats with an update running or waiting", busy())
        if self.hasher is not None:
            hasher = self.hasher
            yield GaugeMetricFamily(
                f"{PREFIX}_bcrypt_queue_depth", "bcrypt work waiting for a worker", hasher.queue_depth
            )
            yield GaugeMetricFamily(
                f"{PREFIX}_bcrypt_in_flight", "bcrypt work requested, not done", hasher.in_flight
            )


def watch_application(app: Application, hasher: MeasuredHasher | None) -> Callable[[], None]:
    """Show the running bot's gauges in /metrics; returns the function that stops showing them."""
    collector = _RunningBot(app, hasher)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)


# --- issue 24: the events relay and the customer-event consumer --------------------------------------------
CUSTOMER_EVENT_OUTCOMES = ("applied", "duplicate", "stale", "kept", "dead_lettered")


class _Events(Collector):
    """The outbox's depth and oldest event's age (as the relay last counted them, at most a second ago),
    what it published, and the customer events by outcome (a malformed one: dead_lettered)."""

    def __init__(self, relay: Any, consumer: Any) -> None:
        self.relay, self.consumer = relay, consumer

    def collect(self) -> Any:
        relay = self.relay
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_depth", "Account events not yet confirmed by the broker", relay.depth
        )
        age = 0.0 if relay.oldest is None else max(0.0, (utcnow() - relay.oldest).total_seconds())
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_age_seconds", "Age of the oldest account event not yet confirmed", age
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_events_relay_connected",
            "1 while the relay is connected to the broker",
            relay.state == "connected",
        )
        yield CounterMetricFamily(
            f"{PREFIX}_events_published", "Account events confirmed by the broker", relay.published
        )
        inbound = CounterMetricFamily(
            f"{PREFIX}_customer_events", "Customer events from the CRM, by outcome", labels=["outcome"]
        )
        for outcome in CUSTOMER_EVENT_OUTCOMES:
            inbound.add_metric([outcome], self.consumer.outcomes[outcome])
        yield inbound


def watch_events(relay: Any, consumer: Any) -> Callable[[], None]:
    """Show the relay's (events.relay.RelayStats) and the consumer's (events.inbound.InboundStats) figures."""
    collector = _Events(relay, consumer)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)


def exposition() -> tuple[bytes, str]:
    """The /metrics body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
