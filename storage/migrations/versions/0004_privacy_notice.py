"""The privacy notice each profile acknowledged: accounts.privacy_version and privacy_acknowledged_at.

Revision ID: 0004
Revises: 0003
Created: 2025-12-12 (issue 15)

Both nullable: profiles saved before the notice existed have acknowledged none, and are shown the current
one at their next login. Written by hand from storage/models.py (see 0001).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("privacy_version", sa.String(32), nullable=True))
    op.add_column("accounts", sa.Column("privacy_acknowledged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("privacy_acknowledged_at")
        batch.drop_column("privacy_version")
