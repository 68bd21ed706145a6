"""The count of a limit's attempts read after the limit's lock, in the lock's own statement (PostgreSQL).

Revision ID: 0009_locked_counts
Revises: 0008_events
Created: 2026-12-06 (issue 20, item 8: the bot's CPU per update)

A limit's check locks its keys and then counts their attempts (storage/attempts.py). In READ COMMITTED a
statement reads from a snapshot taken when it starts, before a lock it waits for is granted, so until now
the lock and the count were two statements: two round trips on every identity check and e-mail step of
a registration. `unogas_count_since` counts from a snapshot of its own, taken when it runs (the query of
a VOLATILE function does), and its last argument, the lock's result, makes it run after the lock: one
statement does both. PL/pgSQL, so that it is never inlined into the calling statement. SQLite has one
writer at a time and no such function: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_locked_counts"
down_revision: str | Sequence[str] | None = "0008_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATE = """
CREATE OR REPLACE FUNCTION unogas_count_since(
    count_kind TEXT, count_key TEXT, count_since TIMESTAMPTZ, after_lock BIGINT
) RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT count(*) FROM attempts WHERE kind = count_kind AND key = count_key AND at > count_since);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS unogas_count_since(TEXT, TEXT, TIMESTAMPTZ, BIGINT)")
