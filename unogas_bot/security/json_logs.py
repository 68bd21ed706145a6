"""Structured logs (`LOG_FORMAT=json`): one JSON object per line, for a log collector.

A collector (journald's JSON export, Loki, Elasticsearch) should not have to parse free text to find the
level or the update a record is about, and a record must stay one line even when it carries a traceback.
Each object has `time` (UTC, ISO 8601), `level`, `logger` and `message`, and, while an update is being
handled, `update_id`, `flow` and `step` (the conversation and the question it is at: names from the code,
never what a customer typed). A traceback goes into `exception` as one string.

Redaction is not repeated here: it happens in the logging filters (redaction.py) before any formatter
sees a record, so the text and JSON formats carry exactly the same, already redacted, message.
"""

from __future__ import annotations

import json
import logging
import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class LogContext:
    """What the bot is working on in the current task: the update and, inside a conversation, its flow
    (the form's name) and step (the question's key). Set by the update processor (bot/), read here."""

    update_id: int | None = None
    flow: str | None = None
    step: str | None = None


# Per task: PTB handles each update in a task of its own, which gets a copy of the context it started in.
LOG_CONTEXT: ContextVar[LogContext | None] = ContextVar("unogas_log_context", default=None)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = LOG_CONTEXT.get()
        if context is not None:
            for key in ("update_id", "flow", "step"):
                value = getattr(context, key)
                if value is not None:
                    entry[key] = value
        if record.exc_info:
            # The frames and the type only: the exception's own text may quote what a customer typed (as
            # bot/handlers.py's on_error, which logs frames and type, knows).
            kind, _error, frames = record.exc_info
            name = kind.__name__ if kind is not None else "Exception"
            entry["exception"] = "".join(traceback.format_tb(frames)) + name
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # ensure_ascii keeps every line 7-bit: a collector never splits a multi-byte character.
        return json.dumps(entry, ensure_ascii=True, default=str)
