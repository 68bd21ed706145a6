"""Customers are unique by their code's key alone: the unique constraint on customers.customer_code goes.

Revision ID: 0005
Revises: 0004
Created: 2026-11-29 (issue 14)

Since 0003 every comparison of customer codes goes through ``code_key``, which is unique; the key is a
function of the code, so two rows with the same code already have the same key and the old constraint can
refuse nothing the new one lets through. Its index was only one more B-tree to keep up for each imported
row (about a fifth of a million-row import's merge, measured). Nothing looks customers up by the printed code.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:  # SQLite drops a constraint by copying the table
        batch.drop_constraint(op.f("uq_customers_customer_code"), type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.create_unique_constraint(op.f("uq_customers_customer_code"), ["customer_code"])
