"""The update inbox and the leadership epoch: bot_inbox, bot_leadership (storage/inbox.py).

Revision ID: 0006_update_inbox
Revises: 0005
Created: 2026-12-06 (issue 20)

Every update is written to bot_inbox (its payload sealed) before Telegram is told it arrived, and marked
handled in the transaction that saves its effect on the conversation; bot_leadership holds the epoch each
new leader raises and every leader's transactions check.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_update_inbox"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_inbox",
        sa.Column("bot_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("replays", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "update_id", name=op.f("pk_bot_inbox")),
    )
    op.create_table(
        "bot_leadership",
        sa.Column("bot_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", name=op.f("pk_bot_leadership")),
    )


def downgrade() -> None:
    op.drop_table("bot_leadership")
    op.drop_table("bot_inbox")
