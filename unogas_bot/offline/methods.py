"""The Bot API methods the stand-in answers, one `_m_<method>` each: a part of :class:`OfflineBotAPI`
(unogas_bot/offline/server.py), which finds them by name. They use the server's chats, messages and
events through the helpers it defines."""

from __future__ import annotations

import time
from typing import Any

from unogas_bot.offline.checks import (
    NOT_MODIFIED,
    QUERY_INVALID,
    check_callback_answer,
    check_chat_action,
    check_commands,
    check_markup,
    check_text,
)
from unogas_bot.offline.events import (
    CallbackAnswered,
    Called,
    CommandsSet,
    DocumentSent,
    Edited,
    LiveMessage,
    Sent,
)
from unogas_bot.offline.faults import Failure
from unogas_bot.offline.markup import JSONDict


class BotApiMethods:
    """The supported Bot API methods (mixed into :class:`OfflineBotAPI`)."""

    # The server's state and helpers these methods use (defined by OfflineBotAPI).
    _chat: Any
    _check_not_blocked: Any
    _bot_message: Any
    _delete: Any
    _get: Any
    _record: Any
    _commands_key: Any
    message_json: Any

    def _m_getMe(self, params: JSONDict) -> JSONDict:
        self._record(Called("getMe", params))
        return self.bot_user

    def _m_sendMessage(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        plain, entities = check_text(params)  # validates text first
        text, parse_mode = params["text"], params.get("parse_mode")
        markup = check_markup(params.get("reply_markup"))
        reply_to: LiveMessage | None = None
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            reply_to = self._get(reply.get("chat_id", chat["id"]), reply.get("message_id"))
            if reply_to is None and not reply.get("allow_sending_without_reply"):
                raise Failure(400, "Bad Request: message to be replied not found")
        self._check_not_blocked(chat)

        message = LiveMessage(
            chat_id=chat["id"],
            message_id=self.new_message_id(chat["id"]),
            from_bot=True,
            text=text,
            reply_markup=markup,
            parse_mode=parse_mode,
            plain_text=plain,
            entities=entities,
        )
        self._messages.setdefault(chat["id"], {})[message.message_id] = message
        if markup and "keyboard" in markup:
            self._reply_keyboards[chat["id"]] = markup
        elif markup and "remove_keyboard" in markup:
            self._reply_keyboards[chat["id"]] = None
        self._record(Sent(chat["id"], message.message_id, text, markup, parse_mode))
        return self.message_json(message, with_reply=reply_to)

    def _m_sendDocument(self, params: JSONDict) -> JSONDict:
        """A file upload (the bot's data export): recorded with its bytes; a file_id or URL is refused,
        the bot never sends one."""
        chat = self._chat(params)
        document = params.get("document")
        uploads = params.get("_uploads") or {}
        # An upload is a multipart part named after the parameter (or "attach://<part>" in the parameter).
        if isinstance(document, str) and document.startswith("attach://"):
            part = uploads.get(document.removeprefix("attach://"))
        elif document is None:
            part = uploads.get("document")
        else:
            raise Failure(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if part is None or not part[1]:
            raise Failure(400, "Bad Request: file must be non-empty")
        filename, content = part[0] or "document", bytes(part[1])
        self._check_not_blocked(chat)
        message = LiveMessage(
            chat_id=chat["id"], message_id=self.new_message_id(chat["id"]), from_bot=True, text=None
        )
        self._messages.setdefault(chat["id"], {})[message.message_id] = message
        caption = params.get("caption")
        self._record(DocumentSent(chat["id"], message.message_id, filename, content, caption))
        data = self.message_json(message)
        data["document"] = {
            "file_id": f"DOC-{chat['id']}-{message.message_id}",
            "file_unique_id": f"doc-{chat['id']}-{message.message_id}",
            "file_name": filename,
            "file_size": len(content),
        }
        return data

    def _m_editMessageText(self, params: JSONDict) -> JSONDict:
        message = self._bot_message(params)
        plain, entities = check_text(params)  # validates text first
        text, parse_mode = params["text"], params.get("parse_mode")
        # Telegram drops the inline keyboard unless the edit repeats it.
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        if (plain, entities, markup) == (message.plain_text, message.entities, message.inline_markup):
            raise Failure(400, NOT_MODIFIED)
        message.text, message.parse_mode, message.plain_text, message.entities = (
            text,
            parse_mode,
            plain,
            entities,
        )
        message.reply_markup = markup
        message.edit_date = int(time.time())
        self._record(Edited(message.chat_id, message.message_id, text, markup, parse_mode))
        return self.message_json(message)

    def _m_editMessageReplyMarkup(self, params: JSONDict) -> JSONDict:
        message = self._bot_message(params)
        markup = check_markup(params.get("reply_markup"), inline_only=True)
        if markup == message.inline_markup:
            raise Failure(400, NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(time.time())
        self._record(Edited(message.chat_id, message.message_id, None, markup))
        return self.message_json(message)

    def _m_deleteMessage(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        if not self._delete(chat, params.get("message_id")):
            raise Failure(400, "Bad Request: message to delete not found")
        return True

    def _m_deleteMessages(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise Failure(400, "Bad Request: message identifiers are not specified")
        for message_id in ids:  # Telegram skips the ones it cannot find
            self._delete(chat, message_id)
        return True

    def _m_answerCallbackQuery(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if self._callback_queries.get(query_id, True):
            raise Failure(400, QUERY_INVALID)  # unknown, or already answered
        text = params.get("text")
        check_callback_answer(text)
        self._callback_queries[query_id] = True
        self._record(CallbackAnswered(query_id, text or None, bool(params.get("show_alert", False))))
        return True

    def _m_setMyCommands(self, params: JSONDict) -> bool:
        language = params.get("language_code")
        commands = check_commands(params.get("commands"), language)
        scope = params.get("scope")
        self._commands[self._commands_key(scope, language)] = commands
        self._record(CommandsSet(commands, scope, language))
        return True

    def _m_deleteMyCommands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        self._record(Called("deleteMyCommands", params))
        return True

    def _m_getMyCommands(self, params: JSONDict) -> list[JSONDict]:
        self._record(Called("getMyCommands", params))
        return self.commands(params.get("scope"), params.get("language_code"))

    def _m_setChatMenuButton(self, params: JSONDict) -> bool:
        self._record(Called("setChatMenuButton", params))
        return True

    def _m_sendChatAction(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        check_chat_action(params.get("action"))
        self._check_not_blocked(chat)
        self._record(Called("sendChatAction", params))
        return True

    def _m_getUpdates(self, params: JSONDict) -> list[JSONDict]:
        return []  # updates are fed straight to Application.process_update by the Simulator

    def _m_setWebhook(self, params: JSONDict) -> bool:
        self.webhook_url = str(params.get("url", ""))
        self._record(Called("setWebhook", params))
        return True

    def _m_deleteWebhook(self, params: JSONDict) -> bool:
        self.webhook_url = ""
        self._record(Called("deleteWebhook", params))
        return True

    def _m_getWebhookInfo(self, params: JSONDict) -> JSONDict:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": 0}

    def _m_close(self, params: JSONDict) -> bool:
        self._record(Called("close", params))
        return True

    def _m_logOut(self, params: JSONDict) -> bool:
        self._record(Called("logOut", params))
        return True
