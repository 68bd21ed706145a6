"""Messages that may hold a password or a security answer never stay in the chat, whatever way they came.

The rule: while a secret question is open, every message the customer sends (text, a photo's or a
document's caption, an edit of an older message) is deleted; and for `GRACE` after a conversation ended
right after a secret question (the lock message, the expiry notice, a success), so a secret sent again by
someone who did not notice the end is deleted too. Commands are never deleted: they cannot be an answer.

The form engine says when a secret question is asked and when it closes (`asked`, `closed`); `guard`
runs before every other handler. The state is two flags in `user_data`, never the secret.

A deletion that times out is tried again in the background with growing waits, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from telegram import Message, Update
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError
from telegram.ext import BaseHandler, MessageHandler, filters

from conversations.context import BotContext

log = logging.getLogger(__name__)

STATE = "_secret"  # user_data key: {"form": name, "at": iso time} while open, {"closed_at": ...} after
GRACE = timedelta(minutes=2)
# An open question whose conversation was dropped (expired and purged) still deletes the customer's next
# message this long after it was asked: a secret typed late is the likeliest first message back.
OPEN_KEPT = timedelta(days=1)
# Waits before each new try of a deletion that timed out (Telegram, or the network, did not answer).
RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)


def asked(user_data: dict[str, Any], form: str, now: datetime) -> None:
    """A secret question of `form` is now open."""
    user_data[STATE] = {"form": form, "at": now.isoformat()}


def closed(user_data: dict[str, Any], form: str, now: datetime, *, ended: bool) -> None:
    """`form`'s open secret question (if any) was answered or left: with `ended` (the conversation is
    over) the grace starts; otherwise it goes on with an ordinary question and nothing is kept."""
    if user_data.get(STATE, {}).get("form") != form:
        return
    if ended:
        user_data[STATE] = {"closed_at": now.isoformat()}
    else:
        user_data.pop(STATE, None)


def forget_if_stale(user_data: dict[str, Any], now: datetime) -> bool:
    """Drop the state once it can no longer delete anything (housekeeping); True if it was dropped."""
    state = user_data.get(STATE)
    if not state:
        return False
    if "form" in state:
        stale = now - datetime.fromisoformat(state["at"]) > OPEN_KEPT
    else:
        stale = now - datetime.fromisoformat(state["closed_at"]) > GRACE
    if stale:
        del user_data[STATE]
    return stale


def must_delete(user_data: dict[str, Any], now: datetime) -> bool:
    """Is a message arriving now to be deleted? An open question whose conversation is gone (its draft
    expired and purged) deletes this message and starts the grace."""
    if forget_if_stale(user_data, now) or STATE not in user_data:
        return False
    form = user_data[STATE].get("form")
    if form is not None and not user_data.get(form):
        closed(user_data, form, now, ended=True)
    return True


async def guard(update: Update, context: BotContext) -> None:
    message = update.effective_message
    if message is None or context.user_data is None:
        return
    if _is_command(message) or not must_delete(context.user_data, context.services.clock()):
        return
    await delete(context, message.chat_id, message.message_id)


def _is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


async def delete(context: BotContext, chat_id: int, message_id: int) -> None:
    """Delete a message that may hold a secret; a timeout is retried in the background."""
    if await _try_delete(context, chat_id, message_id):
        return
    context.application.create_task(_retry(context, chat_id, message_id), name="delete secret message")


async def _retry(context: BotContext, chat_id: int, message_id: int) -> None:
    for wait in RETRY_WAITS:
        await asyncio.sleep(wait)
        if await _try_delete(context, chat_id, message_id):
            return
    log.warning("a message that may hold a secret could not be deleted in chat %s: out of tries", chat_id)


async def _try_delete(context: BotContext, chat_id: int, message_id: int) -> bool:
    """True when done (deleted, or refused for good); False when worth another try."""
    try:
        await context.bot.delete_message(chat_id, message_id)
    except (BadRequest, Forbidden) as exc:  # already gone, too old, or the bot was blocked: final
        log.warning("could not delete a secret message in chat %s: %s", chat_id, type(exc).__name__)
    except NetworkError:  # includes TimedOut: Telegram may not have seen the request at all
        return False
    except TelegramError as exc:
        log.warning("could not delete a secret message in chat %s: %s", chat_id, type(exc).__name__)
    return True


def handler() -> BaseHandler:
    """The guard, for every message and edit in a private chat; register it before everything else."""
    # Not callback queries: their effective message is the bot's own question.
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
    return MessageHandler(filters.ChatType.PRIVATE & messages, guard)
