"""The Telegram account a profile trusts: accounts.owner_telegram_user_id.

Revision ID: 0007_owner_telegram_account
Revises: 0006_update_inbox
Created: 2026-11-30 (issue 21)

The Telegram account that registered the profile or last logged into it. The account-protection limits
count its failed checks in a bucket of its own, so other Telegram accounts' failures never lock it out
(unogas_bot/service/strangers.py). Existing profiles start with the account that registered them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_owner_telegram_account"
down_revision: str | Sequence[str] | None = "0006_update_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("owner_telegram_user_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE accounts SET owner_telegram_user_id = registered_by")


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("owner_telegram_user_id")
