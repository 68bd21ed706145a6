"""Conversation state: PTB's user_data, chat_data and conversation states (storage/persistence.py).

Revision ID: 0002
Revises: 0001
Created: 2025-12-02

Written by hand from storage/models.py, names following its naming convention (see 0001).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _updated_at() -> sa.Column:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "bot_user_data",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _updated_at(),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_bot_user_data")),
    )
    op.create_table(
        "bot_chat_data",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        _updated_at(),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_bot_chat_data")),
    )
    op.create_table(
        "bot_conversations",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("state", sa.String(200), nullable=False),
        _updated_at(),
        sa.PrimaryKeyConstraint("name", "key", name=op.f("pk_bot_conversations")),
    )


def downgrade() -> None:
    op.drop_table("bot_conversations")
    op.drop_table("bot_chat_data")
    op.drop_table("bot_user_data")
