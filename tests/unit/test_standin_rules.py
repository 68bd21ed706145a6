"""The stand-in's Telegram rules that the conversation tests rarely reach: HTML markup (the one parse mode
it takes), the limits and error answers of the Bot API methods. The conversation tests trust these answers
(a malformed message must fail there as it would on Telegram), so they are pinned here, method by method.
"""

from __future__ import annotations

import pytest

from unogas_bot.offline import (
    CommandsSet,
    OfflineBotAPI,
    parse_html,
    parse_text,
    render_text,
)


@pytest.fixture
def api() -> OfflineBotAPI:
    server = OfflineBotAPI()
    server.register_chat(42, "private", first_name="Mario")
    server.register_chat(-100, "group", title="Gruppo")
    return server


def error(api: OfflineBotAPI, method: str, **params: object) -> tuple[int, str]:
    status, answer = api.call(method, params)
    assert not answer["ok"], answer
    return status, answer["description"]


def sent_id(api: OfflineBotAPI, chat_id: int = 42, text: str = "ciao", **params: object) -> int:
    status, answer = api.call("sendMessage", {"chat_id": chat_id, "text": text, **params})
    assert status == 200, answer
    return answer["result"]["message_id"]


# --- markup ----------------------------------------------------------------------------------------------


def test_html_tags_attributes_and_character_references() -> None:
    assert parse_html('<span class="tg-spoiler">s</span>')[1][0]["type"] == "spoiler"
    assert parse_html('<tg-emoji emoji-id="5">👍</tg-emoji>')[1][0]["custom_emoji_id"] == "5"
    assert parse_html('<pre><code class="language-py">x</code></pre>')[1] == [
        {"type": "pre", "offset": 0, "length": 1, "language": "py"}
    ]
    assert parse_html("<a>senza href</a>")[1] == []
    assert parse_html("<blockquote expandable>q</blockquote>")[1][0]["type"] == "expandable_blockquote"
    assert parse_html("&#65;&#x42;&quot;&bogus;")[0] == 'AB"&bogus;'
    assert parse_html("<b x=1 y=\"2\" z='3'>b</b>")[0] == "b"
    for broken, message in [
        ("<span>s</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("<tg-emoji>x</tg-emoji>", 'must have attribute "emoji-id"'),
        ("<b =>x</b>", "Unclosed start tag"),
        ("</b>", "Unexpected end tag"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_html(broken)


def test_parse_modes() -> None:
    assert parse_text("*x*", None) == ("*x*", [])
    assert parse_text("<b>x</b>", "html") == ("x", [{"type": "bold", "offset": 0, "length": 1}])
    assert render_text("<b>rotto", "HTML") == "<b>rotto", "broken markup is shown as it is"
    for mode in ("Markdown", "MarkdownV2", "Foo"):
        with pytest.raises(ValueError, match="unsupported parse_mode"):
            parse_text("x", mode)


@pytest.mark.parametrize("mode", ["Markdown", "MarkdownV2", "markdownv2"])
def test_markdown_parse_modes_are_refused(api: OfflineBotAPI, mode: str) -> None:
    """The bot sends HTML or plain text only, so the stand-in parses only those: a Markdown message is a
    mistake and fails loudly, a 400 as for an unknown parse mode, and is neither delivered nor recorded."""
    message_id = sent_id(api, text="domanda")
    for method, params in [
        ("sendMessage", {"chat_id": 42, "text": "*x*"}),
        ("editMessageText", {"chat_id": 42, "message_id": message_id, "text": "*x*"}),
    ]:
        status, description = error(api, method, parse_mode=mode, **params)
        assert status == 400
        assert description.startswith("Bad Request: unsupported parse_mode")
        assert "HTML only" in description
    assert [m.text for m in api.live_messages(42)] == ["domanda"]
    assert len(api.events) == 1 and [e.method for e in api.errors] == ["sendMessage", "editMessageText"]


# --- methods ---------------------------------------------------------------------------------------------


def test_chats_must_exist_and_not_block_the_bot(api: OfflineBotAPI) -> None:
    assert error(api, "sendMessage", text="x") == (400, "Bad Request: chat_id is empty")
    assert error(api, "sendMessage", chat_id="@canale", text="x")[1] == "Bad Request: chat not found"
    assert error(api, "sendMessage", chat_id=7, text="x")[1] == "Bad Request: chat not found"
    lenient = OfflineBotAPI(strict_chats=False)
    assert lenient.call("sendMessage", {"chat_id": 7, "text": "x"})[0] == 200
    api.blocked_chats.add(-100)
    assert error(api, "sendMessage", chat_id=-100, text="x") == (
        403,
        "Forbidden: bot was kicked from the group chat",
    )
    assert error(api, "sendChatAction", chat_id=42, action="dancing")[1].startswith("Bad Request: wrong")
    assert api.call("sendChatAction", {"chat_id": 42, "action": "typing"})[0] == 200


def test_message_texts_are_checked_like_telegram(api: OfflineBotAPI) -> None:
    assert error(api, "sendMessage", chat_id=42, text="")[1] == "Bad Request: message text is empty"
    assert error(api, "sendMessage", chat_id=42, text="<b> </b>", parse_mode="HTML")[1].endswith("empty")
    assert error(api, "sendMessage", chat_id=42, text="x" * 4097)[1] == "Bad Request: message is too long"
    assert "can't parse entities" in error(api, "sendMessage", chat_id=42, text="<b>", parse_mode="HTML")[1]
    entities = [{"type": "bold", "offset": 0, "length": 1}]
    message_id = sent_id(api, text="x", entities=entities)
    assert api.live_message(42, message_id).entities == entities
    missing = {"chat_id": 42, "message_id": 999}
    assert error(api, "sendMessage", chat_id=42, text="x", reply_parameters=missing)[1].endswith("not found")
    assert sent_id(api, reply_parameters={**missing, "allow_sending_without_reply": True})


@pytest.mark.parametrize(
    ("markup", "description"),
    [
        ("not json", "can't parse reply keyboard markup JSON object"),
        ({"inline_keyboard": [[{"text": "solo testo"}]]}, "Text buttons are unallowed"),
        ({"inline_keyboard": [[{"text": "x", "callback_data": "x" * 65}]]}, "BUTTON_DATA_INVALID"),
        ({"inline_keyboard": [[{"text": "x", "url": "ftp://x"}]]}, "BUTTON_URL_INVALID"),
        ({"something": True}, "can't parse reply keyboard markup JSON object"),
    ],
)
def test_keyboards_are_checked_like_telegram(api: OfflineBotAPI, markup: object, description: str) -> None:
    assert description in error(api, "sendMessage", chat_id=42, text="x", reply_markup=markup)[1]


def test_edits_and_deletions(api: OfflineBotAPI) -> None:
    message_id = sent_id(api, text="domanda")
    assert error(api, "editMessageText", chat_id=42, message_id=message_id, text="domanda")[1].startswith(
        "Bad Request: message is not modified"
    )
    reply_keyboard = {"keyboard": [["Salta"]]}
    assert error(
        api, "editMessageText", chat_id=42, message_id=message_id, text="nuova", reply_markup=reply_keyboard
    )[1] == ("Bad Request: inline keyboard expected")
    assert error(api, "editMessageText", inline_message_id="abc", text="x")[1].endswith("MESSAGE_ID_INVALID")
    assert error(api, "editMessageReplyMarkup", chat_id=42, message_id=999)[1].endswith("not found")
    api.register_user_message(42, api.new_message_id(42), "mio", {"id": 42})
    users_message = max(m.message_id for m in api.live_messages(42))
    assert error(api, "editMessageText", chat_id=42, message_id=users_message, text="x")[1].endswith(
        "message can't be edited"
    )
    api.register_user_message(-100, api.new_message_id(-100), "nel gruppo", {"id": 42})
    in_group = max(m.message_id for m in api.live_messages(-100))
    assert error(api, "deleteMessage", chat_id=-100, message_id=in_group)[1].endswith("can't be deleted")
    api.admin_chats.add(-100)
    assert api.call("deleteMessage", {"chat_id": -100, "message_id": in_group})[0] == 200
    assert error(api, "deleteMessages", chat_id=42, message_ids=[])[1].endswith("not specified")
    assert api.call("deleteMessages", {"chat_id": 42, "message_ids": [message_id, 999]})[0] == 200
    assert api.is_deleted(42, message_id) and not api.is_deleted(42, 999)


def test_callback_answers_commands_and_webhook(api: OfflineBotAPI) -> None:
    api.register_callback_query("q1")
    too_long = "x" * 201
    assert error(api, "answerCallbackQuery", callback_query_id="q1", text=too_long)[1].endswith("TOO_LONG")
    assert api.call("answerCallbackQuery", {"callback_query_id": "q1", "text": "ok"})[0] == 200
    assert api.unanswered_callback_queries == []

    good = [{"command": "aiuto", "description": "come funziona"}]
    assert error(api, "setMyCommands", commands="x")[1].endswith("commands are invalid")
    assert error(api, "setMyCommands", commands=[{"command": "Aiuto!", "description": "x"}])[1].endswith(
        "BOT_COMMAND_INVALID"
    )
    assert error(api, "setMyCommands", commands=[{"command": "aiuto", "description": ""}])[1].endswith(
        "empty"
    )
    assert error(api, "setMyCommands", commands=good, language_code="ita")[1].endswith(
        "language code specified"
    )
    assert api.call("setMyCommands", {"commands": good, "language_code": "it"})[0] == 200
    assert isinstance(api.events[-1], CommandsSet)
    assert api.call("getMyCommands", {"language_code": "it"})[1]["result"] == good
    assert api.call("deleteMyCommands", {"language_code": "it"})[0] == 200
    assert api.commands(language_code="it") == []

    assert api.call("setWebhook", {"url": "https://bot.example.it/hook"})[0] == 200
    assert api.call("getWebhookInfo", {})[1]["result"]["url"] == "https://bot.example.it/hook"
    assert api.call("deleteWebhook", {})[0] == 200 and api.webhook_url == ""
    for method in ("setChatMenuButton", "close", "logOut"):
        assert api.call(method, {})[0] == 200
    assert api.call("getUpdates", {})[1]["result"] == []
