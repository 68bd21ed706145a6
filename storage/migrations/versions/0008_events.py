"""Account events out, customer events in: the outbox and its bookkeeping (issue 24).

Tables outbox_events, event_streams, inbound_events, customer_sequences (storage/outbox.py,
storage/customer_events.py).

Revision ID: 0008_events
Revises: 0007_owner_telegram_account
Created: 2026-12-06 (issue 24)

Every change of an account writes its event to outbox_events in the change's own transaction; the relay
publishes them to RabbitMQ. event_streams numbers each account's events and remembers an erasure.
inbound_events and customer_sequences make the CRM's customer events idempotent and ordered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_events"
down_revision: str | Sequence[str] | None = "0007_owner_telegram_account"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_events_event_id")),
    )
    op.create_index(op.f("ix_outbox_events_sent_at_id"), "outbox_events", ["sent_at", "id"])
    op.create_index(op.f("ix_outbox_events_account_id_sequence"), "outbox_events", ["account_id", "sequence"])
    op.create_table(
        "event_streams",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_event_streams")),
    )
    op.create_table(
        "inbound_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbound_events")),
    )
    op.create_index(op.f("ix_inbound_events_received_at"), "inbound_events", ["received_at"])
    op.create_table(
        "customer_sequences",
        sa.Column("code_key", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code_key", name=op.f("pk_customer_sequences")),
    )


def downgrade() -> None:
    op.drop_table("customer_sequences")
    op.drop_index(op.f("ix_inbound_events_received_at"), table_name="inbound_events")
    op.drop_table("inbound_events")
    op.drop_table("event_streams")
    op.drop_index(op.f("ix_outbox_events_account_id_sequence"), table_name="outbox_events")
    op.drop_index(op.f("ix_outbox_events_sent_at_id"), table_name="outbox_events")
    op.drop_table("outbox_events")
