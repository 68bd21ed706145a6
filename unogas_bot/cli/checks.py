"""Checks of the configuration that need the world outside the process: the database (reachable, its
schema up to date), the ports `run` listens on, the Bot API and the token. `config check` runs them all
without starting anything or changing anything; `run` runs the ones that make a start fail, first, so a
misconfiguration is one line naming its setting instead of a driver's message.

Every problem is a `Problem`: the setting, and what is wrong with it, in one line.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from storage.db import CONNECT_TIMEOUT, Database, alembic_config
from unogas_bot.config import ConfigError, Settings

# The variables `Settings.from_env` reads, each checked on its own so that every bad one is reported.
VARIABLES = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "DATABASE_URL",
    "BCRYPT_ROUNDS",
    "TELEGRAM_WEBHOOK_SECRET",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_PORT",
    "METRICS_HOST",
    "PRIVACY_NOTICE_URL",
    "PRIVACY_NOTICE_VERSION",
    "AUDIT_RETENTION_DAYS",
    "AMQP_URL",
    "EVENTS_SHARE_CREDENTIALS",
    "EVENTS_RETENTION_DAYS",
    "EVENTS_NAME_PREFIX",
)
TELEGRAM_API = "https://api.telegram.org/bot"
TIMEOUT = 5.0  # seconds for the database and the Bot API to answer


@dataclass(frozen=True)
class Problem:
    setting: str
    text: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.text}"


def value_problems(env: Mapping[str, str]) -> list[Problem]:
    """Each variable's own value, checked alone (its rule in config.py)."""
    problems = []
    for name in VARIABLES:
        if not env.get(name, "").strip():
            continue
        try:
            Settings.from_env({name: env[name]})
        except ConfigError as exc:
            problems.append(Problem(name, str(exc).removeprefix(f"{name} ")))
    return problems


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"the SQLite file {parsed.database or ':memory:'}"
    return f"the database at {parsed.host or 'localhost'}:{parsed.port or 5432}"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or one in memory."""
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    return Path(database) if parsed.get_backend_name() == "sqlite" and not in_memory else None


def _reason(exc: BaseException, timeout: float = TIMEOUT) -> str:
    if isinstance(exc, DBAPIError):
        exc = exc.orig or exc  # the driver's own error, without SQLAlchemy's SQL and link
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (is the server running, on that port?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def database_unreachable(url: str, exc: BaseException) -> str:
    """A command's one line for a database it could not open (the URL never shown: it may hold a
    password)."""
    return f"cannot reach {_where(url)} (DATABASE_URL): {_reason(exc, CONNECT_TIMEOUT)}"


async def database_problems(settings: Settings, *, migrated: bool = True) -> list[Problem]:
    """The database answers; with `migrated`, its schema is the code's (nothing is changed here)."""
    from alembic.script import ScriptDirectory

    file = _sqlite_file(settings.database_url)
    if file is not None and not file.parent.is_dir():  # SQLite creates a file, never its folder
        return [
            Problem(
                "DATABASE_URL",
                f"the folder {file.parent} of the SQLite file does not exist: create it (neither `run` nor "
                "`db upgrade` does)",
            )
        ]
    if migrated and file is not None and not file.exists():
        # Opening it would create it: a check changes nothing.
        where = _where(settings.database_url)
        return [Problem("DATABASE_URL", f"{where} does not exist yet: `run` or `db upgrade` creates it")]
    db = Database(settings.database_url, connect_timeout=TIMEOUT)
    try:
        async with asyncio.timeout(TIMEOUT * 2):
            current = await db.current_revision()
    except (OSError, DBAPIError, TimeoutError) as exc:
        return [Problem("DATABASE_URL", f"cannot reach {_where(settings.database_url)}: {_reason(exc)}")]
    finally:
        await db.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if migrated and current != head:
        state = f"is at schema {current}" if current else "has no schema yet"
        return [
            Problem(
                "DATABASE_URL",
                f"{_where(settings.database_url)} {state}, the code needs {head}: "
                "run `unogas-bot db upgrade` (run does it at its start)",
            )
        ]
    return []


def port_problem(host: str, port: int, setting: str, host_setting: str) -> Problem | None:
    """Can `run` listen on host:port? A port in use and an address that is not this machine's are told
    apart, each naming its setting."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return Problem(host_setting, f"{host!r} is no address or name this machine can listen on")
    family, kind, proto, _, address = infos[0]
    try:
        probe = socket.socket(family, kind, proto)
    except OSError as exc:  # an IPv6 address on a machine without IPv6
        return Problem(host_setting, f"cannot listen on {host!r}: {exc.strerror or exc}")
    with probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Problem(setting, f"port {port} on {host} is already in use by another process")
            if exc.errno == errno.EADDRNOTAVAIL:
                return Problem(host_setting, f"{host!r} is not an address of this machine")
            if exc.errno == errno.EINVAL:  # fe80::1 without its zone (fe80::1%eth0)
                return Problem(host_setting, f"cannot listen on {host!r}: {exc.strerror or exc}")
            return Problem(setting, f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return None


async def bot_api_problems(settings: Settings) -> list[Problem]:
    """The Bot API answers getMe for the token (a self-hosted server or Telegram's)."""
    if not settings.telegram_token:
        return [Problem("TELEGRAM_BOT_TOKEN", "not set: `run` needs it (the console does not)")]
    base = settings.telegram_api_base_url or TELEGRAM_API
    setting = "TELEGRAM_API_BASE_URL" if settings.telegram_api_base_url else "TELEGRAM_BOT_TOKEN"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            answer = await client.get(f"{base}{settings.telegram_token}/getMe")
    except httpx.HTTPError as exc:
        return [Problem(setting, f"the Bot API at {base} did not answer ({type(exc).__name__})")]
    if answer.status_code in (401, 404):
        return [Problem("TELEGRAM_BOT_TOKEN", f"refused by the Bot API at {base} ({answer.status_code})")]
    if answer.status_code != 200:
        return [Problem(setting, f"the Bot API at {base} answered getMe with {answer.status_code}")]
    return []


async def broker_problems(settings: Settings) -> list[Problem]:
    """With AMQP_URL: the broker accepts the connection (issue 24; without, events stay in the outbox)."""
    if settings.amqp_url is None:
        return []
    from unogas_bot.events.broker import BrokerUnreachable, connect

    try:
        connection = await connect(settings.amqp_url, TIMEOUT)
    except BrokerUnreachable as exc:
        return [Problem("AMQP_URL", str(exc).replace(" (AMQP_URL)", ""))]
    await connection.close()
    return []


def listen_problems(settings: Settings) -> list[Problem]:
    if settings.metrics_port is None:
        return []
    problem = port_problem(settings.metrics_host, settings.metrics_port, "METRICS_PORT", "METRICS_HOST")
    return [problem] if problem else []


async def all_problems(env: Mapping[str, str], *, network: bool = True) -> list[Problem]:
    """Every problem of the configuration in `env` (the bad values first; the rest needs good values)."""
    problems = value_problems(env)
    bad = {p.setting for p in problems}
    # The other checks go on with the good values; what a bad one stands for is not checked as its default
    # (the default SQLite file, Telegram's own Bot API): that would be a second problem, about a setting
    # the operator never made.
    settings = Settings.from_env({k: v for k, v in env.items() if k not in bad})
    if "DATABASE_URL" not in bad:
        problems += await database_problems(settings)
    if not bad & {"METRICS_PORT", "METRICS_HOST"}:
        problems += listen_problems(settings)
    if network and not bad & {"TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE_URL"}:
        problems += await bot_api_problems(settings)
    if network and "AMQP_URL" not in bad:
        problems += await broker_problems(settings)
    return problems
