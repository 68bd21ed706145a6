"""Housekeeping while the bot runs: old attempt records, expired sessions, audit events past their
retention period and the update inbox's leftovers are deleted every hour, abandoned conversation drafts
every minute (the retention of every table is listed in docs/security.md, "Personal data and retention").

Attempts only matter inside the windows they are counted in (an hour at most) and an expired session is
never used again (`session_account` ignores it), so without this both tables would only grow. A draft
(customer code, names, tax code, phone, e-mail, a password's bcrypt hash) is only useful for the
conversation timeout: the form engine notices an old one only when its customer writes again, so one
never continued would otherwise stay in memory and in the persistence tables for good.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, MutableMapping
from datetime import timedelta
from typing import Any

from telegram.ext import Application, ConversationHandler

from conversations import secret_guard
from conversations.context import BotContext
from conversations.draft import touched_at
from unogas_bot.service import events, upkeep
from unogas_bot.service.context import Services

log = logging.getLogger(__name__)

INTERVAL = timedelta(hours=1)
# Drafts are looked at this often: a walk over the drafts in memory, cheap enough to do every minute, so
# an abandoned draft outlives the conversation timeout by a minute at most.
DRAFTS_INTERVAL = timedelta(minutes=1)
# Far longer than any window an attempt is counted in; kept a day for the support staff's questions.
ATTEMPTS_KEPT = timedelta(days=1)
# The update inbox's safety net (bot/inbox.py): a handled update's tombstone goes once Telegram confirmed
# it (polling), else after an hour (Telegram no longer delivers it again by then); an update still waiting
# after a day (Telegram itself forgets one by then) was never going to be answered.
TOMBSTONES_KEPT = timedelta(hours=1)
WAITING_KEPT = timedelta(days=1)


def attempts_kept(services: Services) -> timedelta:
    """How long attempt records are kept: a day, or longer if a window was configured longer."""
    s = services.settings.limits
    return max(
        ATTEMPTS_KEPT,
        s.login_failures_window,
        s.login_user_window,
        s.recovery_lock,
        s.login_lock,
    )


async def tidy(services: Services) -> tuple[int, int]:
    """Delete outdated attempts and expired sessions; returns how many of each."""
    attempts, sessions = await upkeep.tidy(services, attempts_kept(services))
    log.info("housekeeping: %d old attempts and %d expired sessions deleted", attempts, sessions)
    return attempts, sessions


async def prune_audit(services: Services) -> int:
    """Delete audit events older than the audit retention period (`AUDIT_RETENTION_DAYS`, a year by
    default): of live profiles and, pseudonymised, of erased ones alike; returns how many."""
    pruned = await upkeep.prune_audit(services)
    log.info("housekeeping: %d audit events past the retention period deleted", pruned)
    return pruned


async def purge_drafts(app: Application) -> int:
    """Forget every draft idle longer than the conversation timeout, with its conversation state, in memory
    and (through the persistence, at once) in the database; returns how many.

    A draft is a `user_data` value with a `_touched` time, kept under its form's name, which is also the
    name of the form's ConversationHandler; the handler's state for that user goes too, so nothing of the
    conversation is left (the customer's next message is answered as a new one). Other user data (the
    chosen language) stays.
    """
    services: Services = app.services  # type: ignore[attr-defined]
    cutoff = services.clock() - services.settings.limits.conversation_timeout
    now = services.clock()
    ended: dict[str, set[int]] = {}  # form name -> users whose draft of it was purged
    for user_id, data in list(app.user_data.items()):
        stale = [name for name, value in data.items() if (touched := touched_at(value)) and touched < cutoff]
        if secret_guard.forget_if_stale(data, now) and not stale:
            _changed(app, user_id, data)
        if not stale:
            continue
        for name in stale:
            del data[name]
            ended.setdefault(name, set()).add(user_id)
        _changed(app, user_id, data)
    if not ended:
        return 0
    for handler in _conversation_handlers(app):
        users = ended.get(handler.name or "")
        if users and handler.per_user and not handler.per_message:
            user_at = 1 if handler.per_chat else 0  # PTB's key: (chat id, user id) or (user id,)
            # PTB offers no public way to end a conversation from outside an update: its own dict (a
            # TrackingDict when persistent, so the deletion reaches the persistence like any other).
            states: MutableMapping[tuple[Hashable, ...], object] = handler._conversations
            for key in [key for key in states if key[user_at] in users]:
                states.pop(key, None)
    await app.update_persistence()  # written now rather than at the next tick, and retried if it fails
    purged = sum(len(users) for users in ended.values())
    log.info("housekeeping: %d abandoned draft(s) forgotten", purged)
    return purged


def _changed(app: Application, user_id: int, data: dict[str, Any]) -> None:
    """Have the persistence write the user's data as it is now, or drop it when nothing is left."""
    if data:
        app.mark_data_for_update_persistence(user_ids=user_id)
    else:
        app.drop_user_data(user_id)


def _conversation_handlers(app: Application) -> list[ConversationHandler]:
    return [h for group in app.handlers.values() for h in group if isinstance(h, ConversationHandler)]


async def prune_inbox(app: Application) -> tuple[int, int]:
    """Delete the inbox's old tombstones and its updates waiting for more than a day; how many of each."""
    inbox = getattr(app, "inbox", None)
    if inbox is None:
        return 0, 0
    handled, stale = await inbox.store.prune(TOMBSTONES_KEPT, WAITING_KEPT)
    if stale:
        log.warning(
            "housekeeping: %d update(s) waited in the inbox for over a day, unanswered; deleted", stale
        )
    log.info("housekeeping: %d handled update(s) forgotten by the inbox", handled)
    return handled, stale


async def purge_events(services: Services) -> int:
    """Delete account events past EVENTS_RETENTION_DAYS: sent ones, and without AMQP_URL (nothing relays
    them) unsent ones too, so the outbox stays bounded (issue 24)."""
    purged = await events.purge_events(services, relayed=services.settings.amqp_url is not None)
    log.info("housekeeping: %d account event(s) past the events retention deleted", purged)
    return purged


async def _job(context: BotContext) -> None:
    await tidy(context.services)
    await prune_audit(context.services)
    await purge_events(context.services)
    await prune_inbox(context.application)


async def _drafts_job(context: BotContext) -> None:
    await purge_drafts(context.application)


def schedule(app: Application) -> None:
    """Run `tidy` a minute after start, then every hour, and `purge_drafts` every minute (on PTB's job
    queue, when the app has one)."""
    if app.job_queue is not None:
        app.job_queue.run_repeating(_job, interval=INTERVAL, first=timedelta(minutes=1), name="housekeeping")
        app.job_queue.run_repeating(
            _drafts_job, interval=DRAFTS_INTERVAL, first=DRAFTS_INTERVAL, name="drafts"
        )
