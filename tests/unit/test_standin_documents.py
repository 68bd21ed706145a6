"""sendDocument on the offline stand-in: the upload is recorded with its bytes, as the bot sent it."""

from __future__ import annotations

import pytest
from telegram import InputFile
from telegram.error import BadRequest

from unogas_bot.offline import OfflineBotAPI, offline_builder
from unogas_bot.offline.events import DocumentSent


async def test_an_uploaded_document_is_recorded_with_its_name_and_bytes() -> None:
    api = OfflineBotAPI(strict_chats=False)
    app = offline_builder(api).build()
    await app.initialize()
    try:
        message = await app.bot.send_document(5, InputFile(b'{"a": 1}', filename="x.json"), filename="x.json")
        assert message.document is not None and message.document.file_name == "x.json"
        [sent] = [e for e in api.events if isinstance(e, DocumentSent)]
        assert (sent.chat_id, sent.filename, sent.content) == (5, "x.json", b'{"a": 1}')
        with pytest.raises(BadRequest, match="file identifier"):
            await app.bot.send_document(5, "a-file-id-the-bot-never-sends")
    finally:
        await app.shutdown()
