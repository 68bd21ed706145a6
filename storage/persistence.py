"""Conversation state in the bot's own database, so a restarted bot resumes every customer where they were.

PTB keeps ``user_data`` (the form drafts, the chosen language), ``chat_data`` and the state of each
ConversationHandler in memory and hands what changed to a ``BasePersistence``. ``SqlPersistence`` keeps
them in three tables (``bot_user_data``, ``bot_chat_data``, ``bot_conversations``) on SQLite or PostgreSQL
alike, as JSON text.

This is the one module of ``storage`` that imports Telegram: PTB only persists through a subclass of its
``BasePersistence``. Everything it stores is plain JSON, and nothing else in ``storage`` depends on it.

Writing is in two halves. PTB's ``update_*``/``drop_*`` calls (and ``note_*``, their synchronous form) only
note the change in memory (and skip data identical to what was last noted); ``flush()`` writes everything
noted in ONE transaction. With the update inbox (`run`; storage/inbox.py) the application notes an update's
changes and its "handled" mark together as soon as the update is processed and flushes at once: the mark is
written in the same transaction as the changes (with the leadership epoch's check on PostgreSQL), so a
crash keeps both or neither, and an update whose changes are not written is still waiting in the inbox for
the next process. Updates finishing while a write is in progress share the next one. Without the inbox
(the console, tests) PTB hands the changes over every ``update_interval`` (0.1 s) and they are flushed then.
If the database cannot be reached the noted changes (and marks) are kept and written by the next flush that
succeeds.

Nothing secret is stored: a draft holds a password or security answer only as a keyed digest (its key never
in the database) or as its bcrypt hash (see conversations/draft.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection
from telegram.ext import BasePersistence, PersistenceInput

from storage import persistence_postgres
from storage.db import Database, database_unavailable, upsert_statement
from storage.inbox import InboxStore, Superseded
from storage.models import BotChatData, BotConversation, BotUserData
from unogas_bot.clock import utcnow

log = logging.getLogger(__name__)

# PTB's conversation key: (chat id, user id) for our handlers; a state is a form's field key.
ConversationKey = tuple[int | str, ...]

# Seconds between two write-backs (PTB's BasePersistence.update_interval; the application flushes at each
# one). Short enough that a crash loses at most the reply a customer has just sent (nobody reads a question
# and answers it in a tenth of a second), long enough that under load one transaction carries the changes
# of many chats: writing after every update instead costs more CPU than handling the update itself.
DEFAULT_UPDATE_INTERVAL = 0.1


# One encoder for every call: json.dumps builds a new one each time it is given options.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def encode(value: Any) -> str:
    """Compact JSON; anything that is not plain JSON data is a bug in a handler and fails loudly."""
    return _ENCODER.encode(value)


@dataclass
class _Changes:
    """What is noted but not yet written. A value of None means "delete the row"; `handled` are the inbox
    updates whose effects these changes are (marked handled in the same transaction)."""

    users: dict[int, str | None] = field(default_factory=dict)
    chats: dict[int, str | None] = field(default_factory=dict)
    conversations: dict[tuple[str, str], str | None] = field(default_factory=dict)
    handled: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.users or self.chats or self.conversations or self.handled)

    def __len__(self) -> int:
        return len(self.users) + len(self.chats) + len(self.conversations) + len(self.handled)

    def put_back(self, newer: _Changes) -> _Changes:
        """These changes (a failed write) under the ones noted since: the newer value of a row wins."""
        self.users.update(newer.users)
        self.chats.update(newer.chats)
        self.conversations.update(newer.conversations)
        self.handled += newer.handled
        return self


class SqlPersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """PTB persistence on the bot's database: user_data, chat_data and conversation states.

    ``bot_data`` and ``callback_data`` are not stored: the bot uses neither.
    """

    def __init__(
        self,
        db: Database,
        *,
        update_interval: float = DEFAULT_UPDATE_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=True, user_data=True, callback_data=False),
            update_interval=update_interval,
        )
        self._db = db
        self._clock = clock
        self._changes = _Changes()
        # What the database holds once the noted changes are written, to skip writing identical data:
        # hashes of the JSON for user and chat data, the JSON itself for conversation states (short).
        self._users: dict[int, int] = {}
        self._chats: dict[int, int] = {}
        self._states: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        users, chats, conversations = (
            BotUserData.__table__,
            BotChatData.__table__,
            BotConversation.__table__,
        )
        self._tables: tuple[Table, Table, Table] = (users, chats, conversations)  # type: ignore[assignment]
        self._upserts = (
            upsert_statement(db.dialect, users, key="user_id", update=["data", "updated_at"]),  # type: ignore[arg-type]
            upsert_statement(db.dialect, chats, key="chat_id", update=["data", "updated_at"]),  # type: ignore[arg-type]
            upsert_statement(db.dialect, conversations, key=["name", "key"], update=["state", "updated_at"]),  # type: ignore[arg-type]
        )
        self.writes = 0  # transactions committed (for tests and the benchmark)
        # The update inbox (storage/inbox.py), when the bot has one: updates noted as handled are marked in
        # the transaction that writes their effects.
        self.inbox: InboxStore | None = None

    # --- loading (once, when the application initialises) ------------------------------------------------

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        rows = await self._rows(select(BotUserData.user_id, BotUserData.data))
        self._users = {user_id: hash(text) for user_id, text in rows}
        return {user_id: json.loads(text) for user_id, text in rows}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        rows = await self._rows(select(BotChatData.chat_id, BotChatData.data))
        self._chats = {chat_id: hash(text) for chat_id, text in rows}
        return {chat_id: json.loads(text) for chat_id, text in rows}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> dict[ConversationKey, object]:
        query = select(BotConversation.key, BotConversation.state).where(BotConversation.name == name)
        rows = await self._rows(query)
        self._states.update(((name, key), state) for key, state in rows)
        return {tuple(json.loads(key)): json.loads(state) for key, state in rows}

    async def _rows(self, query: Any) -> list[tuple[Any, ...]]:
        async with self._db.session() as session:
            return [tuple(row) for row in await session.execute(query)]

    # --- noting changes (PTB calls these after handling updates; nothing is written yet) -----------------

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        self.note_user(user_id, data)

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        self.note_chat(chat_id, data)

    async def drop_user_data(self, user_id: int) -> None:
        self.note_user(user_id, None)

    async def drop_chat_data(self, chat_id: int) -> None:
        self.note_chat(chat_id, None)

    # The same, synchronous: the data is serialised at once, so the caller needs no copy of it
    # (bot/application.py takes PTB's changes this way, in one step with the updates they belong to).
    def note_user(self, user_id: int, data: Mapping[Any, Any] | None) -> None:
        self._note(self._changes.users, self._users, user_id, data)

    def note_chat(self, chat_id: int, data: Mapping[Any, Any] | None) -> None:
        self._note(self._changes.chats, self._chats, chat_id, data)

    @staticmethod
    def _note(
        changes: dict[int, str | None], known: dict[int, int], key: int, data: Mapping[Any, Any] | None
    ) -> None:
        # Empty data is no row at all: the table holds only users and chats with something to remember.
        text = encode(data) if data else None
        digest = None if text is None else hash(text)
        if known.get(key) == digest:
            return
        if digest is None:
            known.pop(key, None)
        else:
            known[key] = digest
        changes[key] = text

    async def update_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
        self.note_conversation(name, key, new_state)

    def note_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
        row = (name, encode(list(key)))
        state = None if new_state is None else encode(new_state)
        if self._states.get(row) == state:
            return
        if state is None:
            self._states.pop(row, None)
        else:
            self._states[row] = state
        self._changes.conversations[row] = state

    def note_handled(self, update_ids: list[int]) -> None:
        """These inbox updates are handled: their effects are noted (the application notes them first),
        and the next write marks them handled with those effects, in one transaction."""
        self._changes.handled += update_ids

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Not stored (see the class)."""

    async def update_callback_data(self, data: Any) -> None:
        """Not stored (see the class)."""

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        """Nothing to refresh: this process is the only writer of its conversations."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Nothing to refresh (see refresh_user_data)."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Nothing to refresh (see refresh_user_data)."""

    # --- writing -----------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Rows noted but not written yet."""
        return len(self._changes)

    async def flush(self) -> None:
        """Write what is noted; see ``save``. Called after every update and when the application stops."""
        await self.save()

    async def save(self) -> bool:
        """Write every noted change in one transaction; True if nothing is left unwritten.

        Concurrent callers queue on a lock; whoever gets it writes everything noted up to then, so chats
        answered at the same moment share one commit. If the database is unreachable the changes stay
        noted for the next flush and this returns False (a warning is logged, never any data). Any other
        failure is a bug: the batch is dropped (so it cannot block later writes; its rows are written again
        when they next change) and the error is raised.
        """
        async with self._lock:
            if not self._changes:
                return True
            batch, self._changes = self._changes, _Changes()
            try:
                await self._write(batch)
            except Superseded:
                self._forget(batch)  # nothing of it is ours to write any more
                raise
            except Exception as exc:
                if not database_unavailable(exc):
                    self._forget(batch)
                    raise
                self._changes = batch.put_back(self._changes)
                log.warning(
                    "conversation state not saved (%s): %d change(s) kept for the next attempt",
                    type(exc).__name__,
                    len(self._changes),
                )
                return False
            except BaseException:  # cancelled: keep everything for the final flush
                self._changes = batch.put_back(self._changes)
                raise
            if batch.handled and self.inbox is not None:
                self.inbox.in_hand.difference_update(batch.handled)
            self.writes += 1
            return True

    def _forget(self, batch: _Changes) -> None:
        """Count the rows of a dropped batch as unknown, so their next change is noted whatever it is."""
        for user_id in batch.users:
            self._users.pop(user_id, None)
        for chat_id in batch.chats:
            self._chats.pop(chat_id, None)
        for row in batch.conversations:
            self._states.pop(row, None)

    async def _write(self, batch: _Changes) -> None:
        now = self._clock()
        if self._db.dialect == "postgresql":
            await self._write_postgres(batch, now)
            return
        async with self._db.transaction() as session:
            conn = await session.connection()
            users, chats, conversations = self._tables
            user_upsert, chat_upsert, conversation_upsert = self._upserts
            await _apply(conn, users, user_upsert, "user_id", "data", batch.users, now)
            await _apply(conn, chats, chat_upsert, "chat_id", "data", batch.chats, now)
            rows = [
                {"name": name, "key": key, "state": state, "updated_at": now}
                for (name, key), state in batch.conversations.items()
                if state is not None
            ]
            if rows:
                await conn.execute(conversation_upsert, rows)
            ended: dict[str, list[str]] = {}
            for (name, key), state in batch.conversations.items():
                if state is None:
                    ended.setdefault(name, []).append(key)
            for name, keys in ended.items():
                table = conversations
                await conn.execute(delete(table).where(table.c.name == name, table.c.key.in_(keys)))
            if batch.handled and self.inbox is not None:
                await self.inbox.mark_handled(conn, batch.handled, now)
            if self._db.fence is not None:  # last: the epoch's row is held only until the commit
                await self._db.fence.check(conn)

    async def _write_postgres(self, batch: _Changes, now: datetime) -> None:
        """One statement, one round trip (storage/persistence_postgres.py)."""
        fence = self._db.fence
        handled = batch.handled if self.inbox is not None else []
        bot_id = self.inbox.bot_id if self.inbox is not None else (fence.bot_id if fence is not None else 0)
        rows = persistence_postgres.Batch(batch.users, batch.chats, batch.conversations, handled)
        async with self._db.autocommit() as conn:
            epoch = None if fence is None else fence.epoch
            if not await persistence_postgres.write(conn, rows, now, bot_id, epoch):
                raise Superseded(f"bot {bot_id}: a newer epoch leads, this process has {epoch}")


async def _apply(
    conn: AsyncConnection,
    table: Table,
    upsert: Insert,
    key: str,
    column: str,
    changes: dict[int, str | None],
    now: datetime,
) -> None:
    rows = [{key: k, column: text, "updated_at": now} for k, text in changes.items() if text is not None]
    if rows:
        await conn.execute(upsert, rows)
    gone = [k for k, text in changes.items() if text is None]
    if gone:
        await conn.execute(delete(table).where(table.c[key].in_(gone)))


async def forget_private_chat(db: Database, user_id: int) -> None:
    """Delete what the persistence keeps of `user_id` in its private chat: user data (drafts, language),
    chat data and the state of every conversation; nobody else's rows (the console may run on the
    production database)."""
    # PTB's conversation keys in a private chat (chat id == user id): (chat id, user id) or (user id,).
    keys = [encode([user_id, user_id]), encode([user_id])]
    async with db.transaction() as session:
        await session.execute(delete(BotUserData).where(BotUserData.user_id == user_id))
        await session.execute(delete(BotChatData).where(BotChatData.chat_id == user_id))
        await session.execute(delete(BotConversation).where(BotConversation.key.in_(keys)))
