"""Messages that may hold a password or a security answer never stay in the chat, whatever way they came.

The rule: while a secret question is open, every message the customer sends (text, a photo's or a
document's caption, an edit of an older message) is deleted; and for `GRACE` after a conversation ended
right after a secret question (the lock message, the expiry notice, a success), so a secret sent again by
someone who did not notice the end is deleted too. Commands are never deleted (they cannot be an answer)
unless their arguments hold a secret ("/accedi mario.rossi@example.it Lanterna verde 1987").

Slips (issue 21): for `GRACE` after a secret step, a message equal to what was typed there is deleted
and *refused* wherever it arrives: not passed on to any form (it is no e-mail, phone or security question)
and answered with `secret_slip` (in a group: deleted where the bot may, the customer told privately); so
is a message equal to a secret an open form holds (a password or the
current password as the draft's keyed digest), however late. A secret question still takes it: it is
deleted there anyway, and the form's own rules decide (a repetition must be equal). The comparison uses
this process's keyed digests (`EphemeralMac`), never the text: `user_data` keeps `{digest: until}`.

The form engine says when a secret question is asked and when it closes (`asked`, `closed`); `guard`
runs before every other handler. The state is two flags and the digests in `user_data`, never a secret.

A deletion that times out is tried again in the background with growing waits, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError
from telegram.ext import ApplicationHandlerStop, BaseHandler, MessageHandler, filters

from conversations.context import BotContext
from conversations.draft import Draft
from unogas_bot import rules
from unogas_bot.i18n import texts
from unogas_bot.security.hashing import EphemeralMac
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

STATE = "_secret"  # user_data key: {"form": name, "at": iso time} while open, {"closed_at": ...} after
SLIPS = "_slips"  # user_data key: {keyed digest of something typed at a secret question: until (iso time)}
GRACE = timedelta(minutes=2)
# A command's arguments are searched for a secret among other words up to this length (a secret in a longer
# text is found only as its whole); a question is at most 200 characters anyway.
MAX_ARGUMENTS = 400
MAX_SLIPS = 20  # the latest digests kept: a flood at a secret question does not grow user_data
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
    """Drop the state and the digests once they can no longer delete anything (housekeeping); True if
    anything was dropped."""
    return _prune(user_data, now) | _state_stale(user_data, now)


def _state_stale(user_data: dict[str, Any], now: datetime) -> bool:
    """Drop the open question or grace state once it is over; True if it was dropped."""
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


def forget(user_data: dict[str, Any]) -> None:
    """Forget the state and the digests at once (the profile was erased: nothing of it is kept)."""
    user_data.pop(STATE, None)
    user_data.pop(SLIPS, None)


def _prune(user_data: dict[str, Any], now: datetime) -> bool:
    """Forget the digests whose time is over; True if any was forgotten."""
    slips = user_data.get(SLIPS)
    if not slips:
        return False
    live = {digest: until for digest, until in slips.items() if datetime.fromisoformat(until) > now}
    if len(live) == len(slips):
        return False
    if live:
        user_data[SLIPS] = live
    else:
        del user_data[SLIPS]
    return True


def words(text: str) -> str:
    """A secret's words only: case, accents, punctuation and spacing folded ("lanterna verde 1987?" is
    "Lanterna verde 1987"). A draft keeps this form's digest too (conversations/engine.py)."""
    return rules.text.phrase(text)


def _forms(text: str) -> set[str]:
    """The forms of a message compared: as typed, trimmed, normalised as an answer is, and its words."""
    return {form for form in (text, text.strip(), rules.answer.normalize(text), words(text)) if form}


def _runs(text: str) -> set[str]:
    """Every run of consecutive words of `text` (a question of at most 200 characters): a secret among
    other words ("La mia password è Lanterna verde 1987?") is a run."""
    found = words(text).split()
    return {" ".join(found[i:j]) for i in range(len(found)) for j in range(i + 1, len(found) + 1)}


def _retyped(text: str) -> list[str]:
    """What a password typed again most likely looked like, for a comparison with its bcrypt hash (each
    one a bcrypt check): as typed, trimmed, and with the first letter's case swapped (a phone's keyboard
    capitalises it, or not)."""
    trimmed = text.strip()
    swapped = trimmed[:1].swapcase() + trimmed[1:]
    return [form for form in dict.fromkeys((text, trimmed, swapped)) if form]  # as typed first


def remember(user_data: dict[str, Any], mac: EphemeralMac, text: str, now: datetime) -> None:
    """`text` was taken as a secret (the form engine calls this): for `GRACE` a message equal to it is a
    slip."""
    until = (now + GRACE).isoformat()
    slips = dict(user_data.get(SLIPS) or {})
    for form in _forms(text):
        slips.pop(mac.digest(form), None)
        slips[mac.digest(form)] = until
    user_data[SLIPS] = dict(list(slips.items())[-MAX_SLIPS:])


def is_slip(
    user_data: dict[str, Any], mac: EphemeralMac, text: str, now: datetime, *, among_words: bool = False
) -> bool:
    """Is `text` a secret typed at a secret question in the last `GRACE`, or one an open draft holds? With
    `among_words` (a command's arguments), one among other words counts too."""
    _prune(user_data, now)
    known = set(user_data.get(SLIPS) or ())
    for value in user_data.values():  # the drafts' keyed digests (conversations/draft.py: "_mac")
        if isinstance(value, dict) and isinstance(value.get("_mac"), dict):
            known.update(d for d in value["_mac"].values() if isinstance(d, str) and mac.is_current(d))
    if not known:
        return False
    forms = _forms(text) | (_runs(text) if among_words and len(text) <= MAX_ARGUMENTS else set())
    return any(mac.digest(form) in known for form in forms)


def must_delete(user_data: dict[str, Any], now: datetime) -> bool:
    """Is a message arriving now to be deleted? An open question whose conversation is gone (its draft
    expired and purged) deletes this message and starts the grace."""
    if _state_stale(user_data, now) or STATE not in user_data:
        return False
    form = user_data[STATE].get("form")
    if form is not None and not user_data.get(form):
        closed(user_data, form, now, ended=True)
    return True


async def typed_a_secret(
    services: Services, user_id: int, draft: Draft, text: str, hashes: list[str]
) -> bool:
    """Is `text` a secret the draft holds (the security question must not be one, nor hold one among
    other words), as typed or in other case, spacing or punctuation? Compared with the draft's keyed
    digests; a digest of an earlier process (a restart) cannot be, so then `hashes` (the password's bcrypt
    hash) are checked instead, with the likeliest retypings (`_retyped`)."""
    digests = list(draft.digests.values())
    typed = {services.mac.digest(form) for form in _forms(text) | _runs(text)}
    if typed.intersection(digests):
        return True
    if all(services.mac.is_current(digest) for digest in digests):
        return False
    for hashed in hashes:
        for form in _retyped(text):
            services.hash_budget.take(user_id)
            if await services.hasher.verify(form, hashed):
                return True
    return False


async def guard(update: Update, context: BotContext) -> None:
    message = update.effective_message
    user_data = context.user_data
    if message is None or user_data is None:
        return
    now, mac = context.services.clock(), context.services.mac
    text = message.text or message.caption
    if message.chat.type != ChatType.PRIVATE:
        await _guard_group(update, context, message, text)
        return
    if _is_command(message):  # never an answer, never deleted; but its arguments may hold a secret
        if is_slip(user_data, mac, _arguments(text), now, among_words=True):
            await delete(context, message.chat_id, message.message_id)
            if update.message is not None:  # an edit of an older message needs no answer
                await context.say(update, "secret_slip")
            raise ApplicationHandlerStop
        return
    deleting = must_delete(user_data, now)
    if "form" in user_data.get(STATE, {}):  # a secret question is open: it takes what comes
        await delete(context, message.chat_id, message.message_id)  # (remembered once the form takes it)
        return
    if text and is_slip(user_data, mac, text, now):
        await delete(context, message.chat_id, message.message_id)
        if update.message is not None:  # an edit of an older message needs no answer
            await context.say(update, "secret_slip")
        raise ApplicationHandlerStop  # no form, no other handler gets it
    if deleting:
        await delete(context, message.chat_id, message.message_id)


async def _guard_group(update: Update, context: BotContext, message: Message, text: str | None) -> None:
    """A group: nothing is asked there, so only a slip is deleted (where the group lets the bot), and the
    customer is told in the private chat, not in front of the group."""
    user_data, services = context.user_data, context.services
    command = _is_command(message)
    if command:
        text = _arguments(text)
    if not text or user_data is None:
        return
    if not is_slip(user_data, services.mac, text, services.clock(), among_words=command):
        return
    await delete(context, message.chat_id, message.message_id)
    user = update.effective_user
    if update.message is not None and user is not None:
        try:
            await context.bot.send_message(
                user.id, texts.t(context.language_of(update), "secret_slip_group"), parse_mode=ParseMode.HTML
            )
        except TelegramError as exc:  # the customer never opened the private chat, or blocked the bot
            log.info("could not tell a customer of a slip in a group: %s", type(exc).__name__)
    raise ApplicationHandlerStop


def _is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


def _arguments(text: str | None) -> str:
    """What follows a command ("/accedi mario.rossi@example.it Lanterna verde 1987")."""
    return (text or "").partition(" ")[2].strip()


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
    """The guard, for every message and edit (in a group only slips); register it before everything
    else."""
    # Not callback queries: their effective message is the bot's own question.
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
    return MessageHandler(messages, guard)
