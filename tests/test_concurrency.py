"""Updates of different chats run concurrently; updates of one chat run in order."""

from __future__ import annotations

import asyncio

from telegram import Update

from unogas_bot.concurrency import PerChatUpdateProcessor


def _update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "X"},
                "text": "hi",
            },
        },
        None,
    )


async def test_same_chat_is_serialised_and_other_chats_overlap():
    processor = PerChatUpdateProcessor(16)
    running: dict[int, int] = {}
    peak: dict[int, int] = {}
    overall = {"now": 0, "peak": 0}
    order: list[int] = []

    async def work(update_id: int, chat_id: int) -> None:
        running[chat_id] = running.get(chat_id, 0) + 1
        overall["now"] += 1
        peak[chat_id] = max(peak.get(chat_id, 0), running[chat_id])
        overall["peak"] = max(overall["peak"], overall["now"])
        await asyncio.sleep(0.01)
        order.append(update_id)
        running[chat_id] -= 1
        overall["now"] -= 1

    jobs = []
    for i in range(30):
        chat = i % 3
        jobs.append(processor.process_update(_update(i, chat), work(i, chat)))
    await asyncio.gather(*jobs)
    assert peak == {0: 1, 1: 1, 2: 1}, "never two updates of one chat at once"
    assert overall["peak"] == 3, "the three chats did overlap"
    for chat in range(3):
        mine = [u for u in order if u % 3 == chat]
        assert mine == sorted(mine), "a chat's updates keep their order"
    assert processor._locks == {} and processor._waiting == {}
