"""Configuration read from the environment (docs/operations.md, "Configuration")."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///unogas.db"
DEFAULT_METRICS_HOST = "127.0.0.1"
# What Telegram accepts as a webhook secret token (setWebhook's secret_token).
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ConfigError(ValueError):
    """A setting has a value the bot cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(env: Mapping[str, str]) -> int | None:
    raw = env.get("LOG_LEVEL", "").strip()
    if not raw:
        return None
    if raw.upper() not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
    return int(getattr(logging, raw.upper()))


LOG_FORMATS = ("text", "json")


def _log_format(env: Mapping[str, str]) -> str:
    raw = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if raw not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json, not {raw!r}")
    return raw


def bot_api_base_url(raw: str | None) -> str | None:
    """TELEGRAM_API_BASE_URL: an http(s) address ending in `/bot`, to which the token is appended
    (`http://127.0.0.1:8081/bot` for a self-hosted Bot API server). A malformed one is refused here, at
    once, rather than retried against Telegram for a minute and a half."""
    if raw is None:
        return None
    shown = _without_secrets(raw)
    match = re.fullmatch(r"(https?)://([^/\s?#]+)(/[^\s?#]*)?", raw)
    if match is None or not re.fullmatch(r"[^:@]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", match.group(2)):
        raise ConfigError(
            "TELEGRAM_API_BASE_URL must be an http(s) address such as http://127.0.0.1:8081/bot, "
            f"not {shown!r}"
        )
    if not (match.group(3) or "").endswith("/bot"):
        pasted = re.search(r"/bot\d+:", raw) is not None
        appended = "the token is appended to it" + (": leave it out of the URL" if pasted else "")
        raise ConfigError(
            f"TELEGRAM_API_BASE_URL must end in /bot ({appended}), such as "
            f"{match.group(1)}://{match.group(2)}/bot, not {shown!r}"
        )
    return raw


def _without_secrets(url: str) -> str:
    """`url` as an error may show it: a user's password (`//anna:...@`) and a bot token pasted after /bot
    left out."""
    url = re.sub(r"(?<=//)([^/@:\s]*):[^/@\s]*@", r"\1:…@", url)
    return re.sub(r"(?<=/bot)\d+:[^/?#\s]*", "<token>", url)


# What @BotFather hands out: the bot's number, a colon, a secret of letters, digits, _ and -.
_BOT_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")


def _metrics_host(env: Mapping[str, str]) -> str:
    """Where the health and metrics server listens: loopback unless the operator opens it on purpose
    (a scraper on another machine); the value is an address to bind, never a URL."""
    raw = env.get("METRICS_HOST", "").strip() or DEFAULT_METRICS_HOST
    if any(c in raw for c in "/ ") or raw.count(":") == 1:
        raise ConfigError(f"METRICS_HOST must be an address to listen on (such as 0.0.0.0), not {raw!r}")
    return raw


DEFAULT_PRIVACY_URL = "https://www.unogas.it/privacy"
DEFAULT_PRIVACY_VERSION = "2026-12"


def _privacy(env: Mapping[str, str]) -> dict[str, object]:
    """The privacy notice settings: an https address (shown to customers as a link), a short version name
    (stored with each acknowledgment), the audit retention in days."""
    url = env.get("PRIVACY_NOTICE_URL", "").strip() or DEFAULT_PRIVACY_URL
    if not re.fullmatch(r"https://[^\s<>\"']+", url):
        raise ConfigError("PRIVACY_NOTICE_URL must be an https:// address such as " + DEFAULT_PRIVACY_URL)
    version = env.get("PRIVACY_NOTICE_VERSION", "").strip() or DEFAULT_PRIVACY_VERSION
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", version):
        raise ConfigError("PRIVACY_NOTICE_VERSION must be 1-32 of A-Z a-z 0-9 . _ - (such as 2026-12)")
    days = _int(env, "AUDIT_RETENTION_DAYS", 365, 30, 3650)
    retention = timedelta(days=days)
    return {"privacy_notice_url": url, "privacy_notice_version": version, "audit_retention": retention}


def _amqp_parts_valid(url: str) -> bool:
    """A host and, if any, a port in range: else the broker's client raised ValueError (a traceback) at every
    connection. The URL itself is never repeated (it may hold a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return bool(parts.hostname) and (port is None or port > 0)


def _events(env: Mapping[str, str]) -> dict[str, object]:
    """Issue 24's settings: the broker (AMQP_URL, never repeated: it may hold a password), whether the
    bcrypt hashes travel in the events, how long sent events are kept, and a prefix for the exchange and
    queue names (a staging broker shared with production, or tests side by side)."""
    url = env.get("AMQP_URL", "").strip() or None
    if url is not None and not re.fullmatch(r"amqps?://[^\s]+", url):
        raise ConfigError("AMQP_URL must be an amqp:// or amqps:// URL such as amqp://user:pass@host:5672/")
    if url is not None and not _amqp_parts_valid(url):
        raise ConfigError(
            "AMQP_URL must name a host and a port of 1-65535 (or none: 5672), such as amqp://user:pass@host:5672/"
        )
    raw = env.get("EVENTS_SHARE_CREDENTIALS", "").strip().lower() or "false"
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"EVENTS_SHARE_CREDENTIALS must be true or false, not {raw!r}")
    days = _int(env, "EVENTS_RETENTION_DAYS", 30, 1, 3650)
    prefix = env.get("EVENTS_NAME_PREFIX", "").strip()
    if prefix and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", prefix):
        raise ConfigError("EVENTS_NAME_PREFIX must be 1-64 of A-Z a-z 0-9 . _ - (such as staging.)")
    return {
        "amqp_url": url,
        "events_share_credentials": raw in ("true", "1", "yes"),
        "events_retention": timedelta(days=days),
        "events_name_prefix": prefix,
    }


# INBOX_KEY: 32 bytes, written as 64 hex digits or as base64.
KEY_BYTES = 32
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def parse_key(raw: str) -> bytes:
    """INBOX_KEY as its 32 bytes: 64 hex digits, or base64 (standard or URL-safe, padding optional) of 32
    bytes, e.g. `openssl rand -base64 32`. Raises ValueError naming what is wrong, never the value."""
    value = raw.strip()
    if _HEX_KEY.fullmatch(value):
        return bytes.fromhex(value)
    padded = value + "=" * (-len(value) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be 32 random bytes as base64 or as 64 hex digits") from None
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"must be 32 bytes (it decodes to {len(key)}); make one with openssl rand -base64 32"
        )
    return key


# The drivers installed with the bot, by database (SQLAlchemy's backend name).
_ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}


# What SQLAlchemy's URL parser accepts (make_url, run when the engine is made: storage/db.py), written out
# here because config imports no SQLAlchemy: a scheme, an optional user and password, a host (an IPv6 one in
# brackets), a port that is a number, the database and the query. Anything else failed there with a
# traceback instead of one line naming the setting.
_URL = re.compile(
    r"""[\w+]+://
    (?:[^:/]*(?::[^@]*)?@)?
    (?:(?:\[[^/?]+\]|[^/:?]+)?(?::(?P<port>[^/?]*))?)?
    (?:/[^?]*)?
    (?:\?.*)?""",
    re.VERBOSE | re.DOTALL,
)


def async_database_url(raw: str, name: str = "DATABASE_URL") -> str:
    """`raw` on the async driver the bot uses. Hosting providers hand out postgres:// and postgresql://
    URLs (which SQLAlchemy reads as psycopg's, not installed) and libpq's `sslmode`, which asyncpg calls
    `ssl`. Only the scheme and that parameter's name change; the error never repeats the URL (it may hold
    a password)."""
    url = _URL.fullmatch(raw)
    try:
        if url is None:
            raise ValueError
        if url["port"] is not None:
            int(url["port"])  # as SQLAlchemy reads it
    except ValueError:
        raise ConfigError(f"{name} must be a database URL such as {DEFAULT_DATABASE_URL}") from None
    scheme, rest = raw.split("://", 1)
    backend, _, _driver = scheme.lower().partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    if backend not in _ASYNC_DRIVERS:
        raise ConfigError(f"{name} must name a PostgreSQL or SQLite database, not {backend}://")
    if backend == "postgresql":
        rest = re.sub(r"(?<=[?&])sslmode=", "ssl=", rest)
    return f"{backend}+{_ASYNC_DRIVERS[backend]}://{rest}"


@dataclass(frozen=True)
class Limits:
    """The conversation and account-protection policy: fixed by the issues, overridable only in code (tests,
    the console, the flow scripts); no environment variable sets them."""

    conversation_timeout: timedelta = timedelta(minutes=15)
    max_invalid_replies: int = 5
    verify_attempts_per_hour: int = 5
    session_ttl: timedelta = timedelta(days=30)
    login_failures_per_account: int = 5
    login_failures_window: timedelta = timedelta(minutes=15)
    login_lock: timedelta = timedelta(minutes=15)
    login_failures_per_user: int = 10
    login_user_window: timedelta = timedelta(hours=1)
    # Every Telegram account but the profile's own together, per account and hour (issue 21): today's rate
    # of 5 per 15 minutes, well inside NIST SP 800-63B's 100; past it they wait and the owner does not.
    login_strangers_per_hour: int = 20
    recovery_failures: int = 3
    recovery_strangers_per_hour: int = 10
    # Failed identity checks of one customer code per hour, every Telegram account together (each one has
    # `verify_attempts_per_hour` of its own).
    verify_attempts_per_code_per_hour: int = 20
    # The owner is told of other accounts' failed checks at most this often (once per burst), this long
    # after the failure (the alert's work then lands on no request of the stranger's in particular).
    owner_alert_interval: timedelta = timedelta(hours=1)
    owner_alert_delay: timedelta = timedelta(seconds=1)
    # "This address is already in use" answers per hour, per Telegram user and per customer code.
    email_in_use_per_hour: int = 5
    recovery_lock: timedelta = timedelta(hours=1)
    # Flood control: a chat's updates waiting behind the one running (more are dropped, the chat told to
    # slow down once per interval), and bcrypt hashes or checks per Telegram user in a sliding window.
    chat_queue_limit: int = 20
    slow_down_interval: timedelta = timedelta(minutes=1)
    hash_budget_per_user: int = 6
    hash_budget_window: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class Settings:
    """Everything the bot can be told from outside (the deployment), with the limits policy beside it.
    Secrets (the token) come only from the environment."""

    telegram_token: str | None = field(default=None, repr=False)  # repr=False: never in a log or traceback
    telegram_api_base_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    bcrypt_rounds: int = 12
    # Telegram sends it in every webhook request (X-Telegram-Bot-Api-Secret-Token); others are refused.
    telegram_webhook_secret: str | None = field(default=None, repr=False)
    # LOG_LEVEL as a `logging` level; None: not set, each command's default (see cli/main.py).
    log_level: int | None = None
    # LOG_FORMAT: "text" (one line a record) or "json" (one JSON object a line, for a log collector).
    log_format: str = "text"
    # METRICS_PORT / METRICS_HOST: where `run` serves /healthz, /readyz and /metrics; None: not served.
    metrics_port: int | None = None
    metrics_host: str = DEFAULT_METRICS_HOST
    hash_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # The privacy notice (issue 15): the full notice's address (PRIVACY_NOTICE_URL), the version the short
    # notice stands for (PRIVACY_NOTICE_VERSION: change it when the notice changes, and every logged-in
    # customer is shown it once), and how long audit events are kept (AUDIT_RETENTION_DAYS).
    privacy_notice_url: str = DEFAULT_PRIVACY_URL
    privacy_notice_version: str = DEFAULT_PRIVACY_VERSION
    audit_retention: timedelta = timedelta(days=365)
    # INBOX_KEY: the key of the update inbox's sealed payloads (32 bytes, base64 or hex); None: derived
    # from the bot token (security/sealing.py).
    inbox_key: str | None = field(default=None, repr=False)
    # Issue 24 (docs/events.md): the broker (None: events stay in the outbox), bcrypt hashes in the events,
    # how long sent events are kept, a prefix of the exchange and queue names; the relay's batch size and
    # its longest wait between reconnections (code only).
    amqp_url: str | None = field(default=None, repr=False)
    events_share_credentials: bool = False
    events_retention: timedelta = timedelta(days=30)
    events_name_prefix: str = ""
    events_batch: int = 500
    events_backoff_max: float = 30.0
    # The conversation and account-protection policy (not from the environment).
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip() or None
        if token is not None and not _BOT_TOKEN.fullmatch(token):
            # Refused here, at once, rather than retried against the Bot API; never repeated: a secret.
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN must look like a bot token from @BotFather: the bot's number, a colon, "
                "then letters, digits, _ and -"
            )
        base = bot_api_base_url(env.get("TELEGRAM_API_BASE_URL", "").strip() or None)
        url = async_database_url(env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
        # bcrypt accepts 4..31; below 10 is for tests and demos only.
        rounds = _int(env, "BCRYPT_ROUNDS", 12, 4, 31)
        secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip() or None
        if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret):
            # The value itself is not repeated: it is a secret.
            raise ConfigError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters: letters, digits, _ and -")
        inbox_key = env.get("INBOX_KEY", "").strip() or None
        if inbox_key is not None:
            try:
                parse_key(inbox_key)
            except ValueError as exc:  # the value itself is never repeated: it is a secret
                raise ConfigError(f"INBOX_KEY {exc}") from None
        return cls(
            inbox_key=inbox_key,
            telegram_token=token,
            telegram_api_base_url=base,
            database_url=url,
            bcrypt_rounds=rounds,
            telegram_webhook_secret=secret,
            log_level=_log_level(env),
            log_format=_log_format(env),
            metrics_port=_int(env, "METRICS_PORT", 0, 1, 65535) or None,
            metrics_host=_metrics_host(env),
            **_privacy(env),
            **_events(env),
        )
