"""The polling loop (bot/polling.py) against a scripted getUpdates: the offset moves past a batch only
once the batch is in the inbox, an inbox that cannot be written makes it fetch the same batch again, errors
go to the error handler and are retried, a newer leader stops it, and a stop ends a long poll at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from telegram.error import Conflict, RetryAfter

from storage.inbox import Superseded
from unogas_bot.bot import polling
from unogas_bot.bot.polling import Poller


class Telegram:
    """getUpdates as Telegram answers it: what is not confirmed by an offset comes again."""

    def __init__(self, *answers: Any) -> None:
        self.pending = list(answers)  # each: a list of update ids, an exception, or "hang"
        self.offsets: list[int | None] = []

    async def get_updates(self, offset: int | None = None, **_: Any) -> tuple[Any, ...]:
        self.offsets.append(offset)
        if not self.pending:
            await asyncio.sleep(3600)  # a long poll with nothing to say
        answer = self.pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return tuple(SimpleNamespace(update_id=i) for i in answer)


class Inbox:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.written: list[list[int]] = []
        self.confirmed: list[int | None] = []

    async def admit(self, updates: Sequence[Any], confirmed_below: int | None = None) -> list[Any]:
        if self.failures:
            raise self.failures.pop(0)
        self.written.append([u.update_id for u in updates])
        self.confirmed.append(confirmed_below)
        return [u for u in updates if u.update_id != 2]  # 2 was taken before


def _app(telegram: Telegram) -> Any:
    errors: list[Exception] = []

    async def process_error(update: object, error: Exception) -> None:
        errors.append(error)

    return SimpleNamespace(
        bot=telegram, update_queue=asyncio.Queue(), process_error=process_error, errors=errors
    )


async def _until(poller: Poller, telegram: Telegram, calls: int) -> None:
    task = asyncio.ensure_future(poller.run())
    for _ in range(500):
        if len(telegram.offsets) >= calls:
            break
        await asyncio.sleep(0.01)
    poller.stop()
    await asyncio.wait_for(task, 2)


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "FIRST_WAIT", 0.01)


async def test_a_batch_is_confirmed_only_once_it_is_in_the_inbox() -> None:
    unreachable = OperationalError("INSERT", {}, ConnectionRefusedError())
    telegram = Telegram([1, 2, 3], [1, 2, 3], [4])
    inbox = Inbox(unreachable)
    app = _app(telegram)
    poller = Poller(app, inbox, ["message"])  # type: ignore[arg-type]
    await _until(poller, telegram, 4)
    assert telegram.offsets[:3] == [None, None, 4], "fetched again from the same offset, then past it"
    assert inbox.written == [[1, 2, 3], [4]] and inbox.confirmed == [None, 4]
    assert [app.update_queue.get_nowait().update_id for _ in range(3)] == [1, 3, 4], "2 was taken before"
    assert poller.offset == 5


async def test_errors_go_to_the_error_handler_and_are_retried() -> None:
    telegram = Telegram(Conflict("terminated by other getUpdates request"), RetryAfter(0), [7])
    app = _app(telegram)
    poller = Poller(app, Inbox(), ["message"])  # type: ignore[arg-type]
    await _until(poller, telegram, 4)
    assert [type(e).__name__ for e in app.errors] == ["Conflict", "RetryAfter"]
    assert app.update_queue.get_nowait().update_id == 7


async def test_a_newer_leader_stops_the_loop_without_confirming() -> None:
    telegram = Telegram([5])
    stopped: list[str] = []
    app = _app(telegram)
    poller = Poller(app, Inbox(Superseded("epoch 3 leads")), ["message"], on_superseded=stopped.append)  # type: ignore[arg-type]
    await asyncio.wait_for(poller.run(), 2)
    assert stopped == ["a newer leader took over (epoch 3 leads)"] and poller.offset == 0
    assert app.update_queue.empty()


async def test_a_bug_in_the_inbox_is_not_swallowed() -> None:
    poller = Poller(_app(Telegram([5])), Inbox(ValueError("a bug")), ["message"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await asyncio.wait_for(poller.run(), 2)


async def test_stopping_ends_a_long_poll_at_once_and_confirms_what_was_taken() -> None:
    telegram = Telegram([8, 9])
    app = _app(telegram)
    poller = Poller(app, Inbox(), ["message"])  # type: ignore[arg-type]
    await _until(poller, telegram, 2)  # the second call hangs until stopped
    assert poller.offset == 10
    telegram.pending = [[]]
    await poller.confirm()
    assert telegram.offsets[-1] == 10, "a last call tells Telegram"
    idle = Poller(_app(Telegram()), Inbox(), ["message"])  # type: ignore[arg-type]
    await idle.confirm()  # nothing taken: nothing to tell
