"""Helpers for the login, profile and recovery tests (on top of tests/kit/botkit.py)."""

from __future__ import annotations

from typing import Any

from tests.kit.botkit import ANSWER, MARIO, PASSWORD, Bot, answer_all, register_person, texts_of
from unogas_bot.offline import Deleted, Sent, SimUser

MARIO_EMAIL = "mario.rossi@example.it"
GIULIA_EMAIL = "giulia.bianchi@example.it"
WRONG_PASSWORD = "Luna piena 1999"
NEW_PASSWORD = "Girasoli in fila 88"  # not the catalogue's example, which is logged
WRONG_ANSWER = "Micio Nero"


async def registered(
    bot: Bot,
    user_id: int = 1001,
    customer: dict[str, str] = MARIO,
    email: str = MARIO_EMAIL,
    password: str = PASSWORD,
) -> SimUser:
    """A Telegram user who has just registered `customer` (not logged in)."""
    user = bot.user(user_id)
    events = await register_person(user, customer, email=email, password=password)
    assert "correttamente salvate" in texts_of(events)[-1]
    return user


async def login(user: SimUser, email: str = MARIO_EMAIL, password: str = PASSWORD) -> list[Any]:
    """/accedi, the address, the password; returns the events of the password step."""
    return await answer_all(user, "/accedi", email, password)


async def start_recovery(user: SimUser, email: str = MARIO_EMAIL, code: str = MARIO["code"]) -> list[Any]:
    """/recupera_password, the address, the customer code; returns the events of the last step."""
    return await answer_all(user, "/recupera_password", email, code)


async def recover(
    user: SimUser, new_password: str = NEW_PASSWORD, answer: str = ANSWER, email: str = MARIO_EMAIL
) -> list[Any]:
    """A complete recovery; returns the events of the last step."""
    await start_recovery(user, email)
    return await answer_all(user, answer, new_password, new_password)


def said(events: list[Any]) -> str:
    """Everything the bot wrote in these events, as one text."""
    return "\n".join(texts_of(events))


def deleted_ids(events: list[Any]) -> set[int]:
    return {e.message_id for e in events if isinstance(e, Deleted)}


def sent(events: list[Any]) -> list[Sent]:
    return [e for e in events if isinstance(e, Sent)]


class VerifySpy:
    """Wraps `hasher.verify` and records, for each call, whether a real hash (not None) was given."""

    def __init__(self, bot: Bot) -> None:
        self.real = bot.services.hasher.verify
        self.calls: list[bool] = []

    async def __call__(self, secret: str, hashed: str | None) -> bool:
        self.calls.append(hashed is not None)
        return await self.real(secret, hashed)


async def alerts_settled() -> None:
    """Wait for the owner alerts sent in the background (conversations/alerts.py) to be done, with a
    deadline: a stranger's failure starts one, and it records an attempt and an audit event."""
    import asyncio

    from conversations import alerts

    for _ in range(100):
        pending = [t for t in asyncio.all_tasks() if t.get_name() == alerts.TASK_NAME and not t.done()]
        if not pending:
            return
        await asyncio.wait(pending, timeout=10)
    raise AssertionError("owner alerts still running")
