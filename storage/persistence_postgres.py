"""The conversation state's write on PostgreSQL in one statement (storage/persistence.py uses it).

A customer's next message waits until the last one is saved (the update inbox: handled means saved), so
the save's round trips are on every reply's way. Here the whole batch, user and chat data, conversation
states, the inbox's "handled" marks and the leadership epoch's check, is one statement committed on its
own: data-modifying CTEs over arrays, all or nothing, and nothing at all when the epoch is not this
process's (the statement says so, and the caller raises Superseded).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.models import UTCDateTime

_WRITE = text(
    """
    WITH fence AS (SELECT epoch FROM bot_leadership WHERE bot_id = :bot FOR SHARE),
    ok AS (
        SELECT 1 WHERE CAST(:epoch AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM fence WHERE epoch = :epoch)
    ),
    users AS (
        INSERT INTO bot_user_data (user_id, data, updated_at)
        SELECT t.k, t.d, :now FROM unnest(CAST(:user_ids AS BIGINT[]), CAST(:user_data AS TEXT[])) AS t(k, d)
        WHERE EXISTS (SELECT 1 FROM ok)
        ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at
    ),
    users_gone AS (
        DELETE FROM bot_user_data
        WHERE user_id = ANY(CAST(:users_gone AS BIGINT[])) AND EXISTS (SELECT 1 FROM ok)
    ),
    chats AS (
        INSERT INTO bot_chat_data (chat_id, data, updated_at)
        SELECT t.k, t.d, :now FROM unnest(CAST(:chat_ids AS BIGINT[]), CAST(:chat_data AS TEXT[])) AS t(k, d)
        WHERE EXISTS (SELECT 1 FROM ok)
        ON CONFLICT (chat_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at
    ),
    chats_gone AS (
        DELETE FROM bot_chat_data
        WHERE chat_id = ANY(CAST(:chats_gone AS BIGINT[])) AND EXISTS (SELECT 1 FROM ok)
    ),
    states AS (
        INSERT INTO bot_conversations (name, key, state, updated_at)
        SELECT t.n, t.k, t.s, :now
        FROM unnest(CAST(:names AS TEXT[]), CAST(:keys AS TEXT[]), CAST(:states AS TEXT[])) AS t(n, k, s)
        WHERE EXISTS (SELECT 1 FROM ok)
        ON CONFLICT (name, key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
    ),
    states_gone AS (
        DELETE FROM bot_conversations c
        USING unnest(CAST(:names_gone AS TEXT[]), CAST(:keys_gone AS TEXT[])) AS t(n, k)
        WHERE c.name = t.n AND c.key = t.k AND EXISTS (SELECT 1 FROM ok)
    ),
    handled AS (
        UPDATE bot_inbox SET handled_at = :now, payload = NULL
        WHERE bot_id = :bot AND update_id = ANY(CAST(:handled AS BIGINT[])) AND EXISTS (SELECT 1 FROM ok)
    )
    SELECT EXISTS (SELECT 1 FROM ok)
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True)
class Batch:
    """What one write stores: None as a value deletes the row."""

    users: dict[int, str | None]
    chats: dict[int, str | None]
    conversations: dict[tuple[str, str], str | None]
    handled: Iterable[int]


async def write(conn: AsyncConnection, batch: Batch, now: datetime, bot_id: int, epoch: int | None) -> bool:
    """Write `batch` in one statement on `conn` (autocommit); False when the epoch is not `epoch` any
    more (nothing was written)."""
    kept = {name: [(k, v) for k, v in rows.items() if v is not None] for name, rows in _rows(batch).items()}
    gone = {name: [k for k, v in rows.items() if v is None] for name, rows in _rows(batch).items()}
    params = {
        "bot": bot_id,
        "epoch": epoch,
        "now": now,
        "user_ids": [k for k, _ in kept["users"]],
        "user_data": [v for _, v in kept["users"]],
        "users_gone": gone["users"],
        "chat_ids": [k for k, _ in kept["chats"]],
        "chat_data": [v for _, v in kept["chats"]],
        "chats_gone": gone["chats"],
        "names": [k[0] for k, _ in kept["states"]],
        "keys": [k[1] for k, _ in kept["states"]],
        "states": [v for _, v in kept["states"]],
        "names_gone": [k[0] for k in gone["states"]],
        "keys_gone": [k[1] for k in gone["states"]],
        "handled": list(batch.handled),
    }
    return bool((await conn.execute(_WRITE, params)).scalar())


def _rows(batch: Batch) -> dict[str, dict]:  # type: ignore[type-arg]
    return {"users": batch.users, "chats": batch.chats, "states": batch.conversations}
