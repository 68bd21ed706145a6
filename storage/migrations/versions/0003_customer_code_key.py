"""Customer codes compared by a key: customers.code_key (issue 13).

Revision ID: 0003
Revises: 0002
Created: 2025-12-10

A customer types "UG100234" or "UG 100 234" for the "UG-100234" printed on the bill. The registry keeps the
code as printed (shown in summaries and support tools) and, next to it, the key every comparison uses
(``domain.customer_code_key``: upper-case letters and digits only). Existing rows get their key from their
stored code, which is already upper-case and validated (A-Z, 0-9, '-' and '/'), so dropping '-' and '/' in SQL
gives the same key as the Python function. Two stored codes that differ only by separators would make the
unique constraint fail: such a registry was ambiguous already, and the upgrade stops rather than guess.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("code_key", sa.String(20), nullable=True))
    op.execute("UPDATE customers SET code_key = replace(replace(customer_code, '-', ''), '/', '')")
    with op.batch_alter_table("customers") as batch:  # SQLite cannot alter a column in place
        batch.alter_column("code_key", existing_type=sa.String(20), nullable=False)
        batch.create_unique_constraint(op.f("uq_customers_code_key"), ["code_key"])


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_constraint(op.f("uq_customers_code_key"), type_="unique")
        batch.drop_column("code_key")
