"""Initial schema: customer registry, accounts, Telegram sessions, attempts, audit trail.

Revision ID: 0001
Revises:
Created: 2025-11-26

Written by hand from storage/models.py; every constraint is named explicitly, following the naming
convention there, so later migrations can drop or alter constraints by name on SQLite and PostgreSQL alike.
Names are wrapped in op.f() ("final"): alembic would otherwise run them through the naming convention again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_code", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=True),
        sa.Column("company_name", sa.String(200), nullable=True),
        sa.Column("tax_code", sa.String(16), nullable=False),
        sa.Column("name_key", sa.String(401), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("customer_code", name=op.f("uq_customers_customer_code")),
        sa.CheckConstraint("kind IN ('person', 'business')", name=op.f("ck_customers_kind")),
        sa.CheckConstraint(
            "customer_code = upper(customer_code)", name=op.f("ck_customers_customer_code_upper")
        ),
        sa.CheckConstraint(
            "(kind = 'person' AND first_name IS NOT NULL AND last_name IS NOT NULL"
            " AND company_name IS NULL)"
            " OR (kind = 'business' AND company_name IS NOT NULL AND first_name IS NULL"
            " AND last_name IS NULL)",
            name=op.f("ck_customers_names_per_kind"),
        ),
    )

    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("security_question", sa.String(200), nullable=False),
        sa.Column("answer_hash", sa.String(255), nullable=False),
        sa.Column("phone", sa.String(16), nullable=True),
        _ts("registered_at"),
        sa.Column("registered_by", sa.BigInteger(), nullable=False),
        _ts("password_changed_at"),
        _ts("login_locked_until", nullable=True),
        _ts("recovery_locked_until", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_accounts_customer_id_customers")
        ),
        sa.UniqueConstraint("customer_id", name=op.f("uq_accounts_customer_id")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_accounts_email_lower")),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "telegram_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_sessions")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_telegram_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_telegram_sessions_telegram_user_id")),
    )
    op.create_index(op.f("ix_telegram_sessions_account_id"), "telegram_sessions", ["account_id"])

    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    op.create_index(op.f("ix_attempts_kind_key_at"), "attempts", ["kind", "key", "at"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at"),
        sa.Column("event", sa.String(64), nullable=False),
        # No foreign key on purpose: the history of a deleted account is kept.
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("customer_code", sa.String(20), nullable=True),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_account_id_at"), "audit_events", ["account_id", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_account_id_at"), table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index(op.f("ix_attempts_kind_key_at"), table_name="attempts")
    op.drop_table("attempts")
    op.drop_index(op.f("ix_telegram_sessions_account_id"), table_name="telegram_sessions")
    op.drop_table("telegram_sessions")
    op.drop_table("accounts")
    op.drop_table("customers")
