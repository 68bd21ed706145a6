"""Telegram's error answers and the faults a test can inject, so error paths run without a real outage.

Kept apart from the server so that the server's methods only say *which* error they answer, while the
shape of an error (status, description, ``parameters.retry_after``) and the queue of injected faults live
in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from telegram.error import NetworkError, TimedOut

from unogas_bot.offline.markup import JSONDict


class Failure(Exception):
    """Aborts a Bot API method with Telegram's error answer (status ``code`` and ``description``)."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def answer(self) -> JSONDict:
        """The JSON body Telegram sends with this error."""
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class Fault(StrEnum):
    """Faults that :meth:`OfflineBotAPI.fail_next` can inject."""

    NETWORK = "network"  # request layer raises telegram.error.NetworkError (dropped connection)
    TIMEOUT = "timeout"  # request layer raises telegram.error.TimedOut
    RETRY_AFTER = "retry_after"  # 429 with parameters.retry_after -> telegram.error.RetryAfter
    BLOCKED = "blocked"  # 403 "Forbidden: bot was blocked by the user" -> telegram.error.Forbidden
    BAD_REQUEST = "bad_request"  # 400 -> telegram.error.BadRequest


@dataclass(slots=True)
class _PendingFault:
    method: str | None  # lower-cased method name, None = any
    fault: Fault
    remaining: int
    retry_after: int


class FaultQueue:
    """Injected faults in the order they were asked for; each fires on the next matching call."""

    __slots__ = ("_faults",)

    def __init__(self) -> None:
        self._faults: list[_PendingFault] = []

    def add(self, method: str | None, fault: Fault | str, times: int, retry_after: int) -> None:
        """Queue ``times`` failures of ``method`` (any method if None)."""
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(
            _PendingFault(method.lower() if method else None, Fault(fault), times, retry_after)
        )

    def clear(self) -> None:
        """Forget faults that have not fired yet."""
        self._faults.clear()

    @property
    def pending(self) -> int:
        """How many injected failures have not fired yet."""
        return sum(f.remaining for f in self._faults)

    def fire(self, method: str) -> None:
        """Raise the first queued fault for ``method`` (lower-cased), if any; do nothing otherwise.

        Network faults raise PTB's NetworkError/TimedOut, as the HTTP layer would; the others raise a
        :class:`Failure`, as Telegram's answer would.
        """
        if not self._faults:  # the usual case, on every call: keep it cheap for the benchmark
            return
        pending = next((f for f in self._faults if f.method is None or f.method == method), None)
        if pending is None:
            return
        pending.remaining -= 1
        if pending.remaining == 0:
            self._faults.remove(pending)
        match pending.fault:
            case Fault.NETWORK:
                raise NetworkError("httpx.ReadError: injected fault: connection reset by peer")
            case Fault.TIMEOUT:
                raise TimedOut("injected fault: read timed out")
            case Fault.RETRY_AFTER:
                raise Failure(
                    429,
                    f"Too Many Requests: retry after {pending.retry_after}",
                    {"retry_after": pending.retry_after},
                )
            case Fault.BLOCKED:
                raise Failure(403, "Forbidden: bot was blocked by the user")
            case Fault.BAD_REQUEST:
                raise Failure(400, "Bad Request: injected fault")
