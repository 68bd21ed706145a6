"""SQLAlchemy ORM models: the whole database schema of the bot.

Only the repositories in this package use these classes; everything they hand out is a plain frozen
dataclass, so no caller can trigger a lazy load outside a session.

The schema must stay portable between SQLite and PostgreSQL, and every constraint has a deterministic name
(see ``NAMING_CONVENTION``) so that alembic migrations can refer to constraints by name on both databases.
Any change here needs a new migration in ``storage/migrations/versions``; ``tests/storage/test_migrations.py``
fails when the models and the migrated schema drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from unogas_bot.domain.keys import ATTEMPT_KEY_LEN
from unogas_bot.rules.replies import BUSINESS, PERSON

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column sizes, shared with the migration and with input validation elsewhere.
CUSTOMER_CODE_LEN = 20
NAME_LEN = 200
TAX_CODE_LEN = 16
NAME_KEY_LEN = 401  # two person keys joined by "|"
EMAIL_LEN = 254  # RFC 5321 path limit
HASH_LEN = 255
QUESTION_LEN = 200
PHONE_LEN = 16  # E.164: "+" and at most 15 digits
ATTEMPT_KIND_LEN = 32
EVENT_LEN = 64
DETAIL_LEN = 500
CONVERSATION_NAME_LEN = 64
CONVERSATION_KEY_LEN = 100  # JSON of PTB's key: [chat id, user id]
CONVERSATION_STATE_LEN = 200  # JSON of a state: a form's field key
PRIVACY_VERSION_LEN = 32

CUSTOMER_KINDS = (PERSON, BUSINESS)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as UTC text and get
    their UTC tzinfo back when read. Naive datetimes are refused on the way in: they are always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: storage wants timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every stored value must have the same (naive UTC) form.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Customer(Base):
    """The customer registry: what is printed on the bills, imported from the billing system's CSV."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(f"kind IN ('{PERSON}', '{BUSINESS}')", name="kind"),
        CheckConstraint("customer_code = upper(customer_code)", name="customer_code_upper"),
        # A person has first and last name, a business only a company name (a sole trader's trade name).
        CheckConstraint(
            f"(kind = '{PERSON}' AND first_name IS NOT NULL AND last_name IS NOT NULL"
            " AND company_name IS NULL)"
            f" OR (kind = '{BUSINESS}' AND company_name IS NOT NULL AND first_name IS NULL"
            " AND last_name IS NULL)",
            name="names_per_kind",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_code: Mapped[str] = mapped_column(String(CUSTOMER_CODE_LEN))
    # What codes are compared by (domain.customer_code_key: "UG-100234" -> "UG100234"), so a code typed
    # without its hyphen finds the customer; customer_code stays as printed on the bill (migration 0003).
    code_key: Mapped[str] = mapped_column(String(CUSTOMER_CODE_LEN), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    first_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    last_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    company_name: Mapped[str | None] = mapped_column(String(NAME_LEN))
    tax_code: Mapped[str] = mapped_column(String(TAX_CODE_LEN))
    # The matching key: "person_key(first)|person_key(last)" or "company_key(company)".
    name_key: Mapped[str] = mapped_column(String(NAME_KEY_LEN))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Account(Base):
    """A customer-area account. One per customer, enforced by the unique customer_id.

    ``email`` is always stored lower-cased (the repository lower-cases every address before storing or
    looking it up, and a check constraint refuses anything else), so the plain unique constraint makes
    e-mail addresses unique case-insensitively and lookups can use the index.
    """

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="email_lower"),
        # Never reuse the id of a deleted account: audit events keep referring to it.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    email: Mapped[str] = mapped_column(String(EMAIL_LEN), unique=True)
    password_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    security_question: Mapped[str] = mapped_column(String(QUESTION_LEN))
    answer_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    phone: Mapped[str | None] = mapped_column(String(PHONE_LEN))
    registered_at: Mapped[datetime]
    registered_by: Mapped[int] = mapped_column(BigInteger)  # Telegram user id
    password_changed_at: Mapped[datetime]
    login_locked_until: Mapped[datetime | None]
    recovery_locked_until: Mapped[datetime | None]
    # The privacy notice the customer was shown (its version, PRIVACY_NOTICE_VERSION) and when: what the
    # customer acknowledged before giving any data, or the newer version shown to them once logged in.
    # None for profiles saved before the notice existed: they are shown it at their next login.
    privacy_version: Mapped[str | None] = mapped_column(String(PRIVACY_VERSION_LEN))
    privacy_acknowledged_at: Mapped[datetime | None]
    # The Telegram account the profile trusts: the one that registered it or last logged in (migration
    # 0007). Its failed checks have a bucket of their own: other accounts' failures never lock it out.
    owner_telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)


class TelegramSession(Base):
    """A Telegram user logged into an account. A Telegram user is logged into at most one account."""

    __tablename__ = "telegram_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Attempt(Base):
    """One attempt at a rate-limited action, counted in time windows: limits survive restarts."""

    __tablename__ = "attempts"
    __table_args__ = (Index(None, "kind", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(ATTEMPT_KIND_LEN))
    key: Mapped[str] = mapped_column(String(ATTEMPT_KEY_LEN))
    at: Mapped[datetime]


class AuditEvent(Base):
    """The audit trail. ``detail`` is a short free text and must never contain a secret.

    ``account_id`` has deliberately no foreign key: history outlives a deleted account.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(EVENT_LEN))
    account_id: Mapped[int | None] = mapped_column(Integer)
    customer_code: Mapped[str | None] = mapped_column(String(CUSTOMER_CODE_LEN))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(String(DETAIL_LEN))


# --- the bot's conversation state (written by storage/persistence.py) ------------------------------------
# JSON text rather than a JSON column: the persistence compares and writes the serialised text as it is,
# and SQLite and PostgreSQL store it alike. Drafts never hold a secret in clear (see conversations/draft.py).


class BotUserData(Base):
    """PTB's ``user_data`` of one Telegram user: form drafts, the chosen language. No row when empty."""

    __tablename__ = "bot_user_data"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class BotChatData(Base):
    """PTB's ``chat_data`` of one chat (e.g. a group told to use the private chat). No row when empty."""

    __tablename__ = "bot_chat_data"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class BotConversation(Base):
    """Where one conversation of one ConversationHandler stands; a conversation that ended has no row."""

    __tablename__ = "bot_conversations"

    name: Mapped[str] = mapped_column(String(CONVERSATION_NAME_LEN), primary_key=True)
    key: Mapped[str] = mapped_column(String(CONVERSATION_KEY_LEN), primary_key=True)
    state: Mapped[str] = mapped_column(String(CONVERSATION_STATE_LEN))
    updated_at: Mapped[datetime]


# --- the update inbox and the leadership epoch (storage/inbox.py) ----------------------------------------


class BotInbox(Base):
    """An update Telegram delivered, written before Telegram is told it arrived. Waiting while
    ``handled_at`` is None; the payload (the update's JSON, sealed with AES-GCM: never in clear) goes when
    it is handled, and the row (a tombstone, which keeps a re-delivery from being taken as new) once
    Telegram has confirmed it."""

    __tablename__ = "bot_inbox"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    arrived_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Leaders that started from this update (a takeover's replay); units of work of it that committed.
    replays: Mapped[int] = mapped_column(Integer)
    applied: Mapped[int] = mapped_column(Integer)


class BotLeadership(Base):
    """The leadership epoch of a bot: raised by each new leader, checked by its transactions (PostgreSQL)."""

    __tablename__ = "bot_leadership"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger)
    since: Mapped[datetime]


# --- issue 24: account events out (the outbox), customer events in (storage/outbox.py, customer_events.py) --

EVENT_ID_LEN = 64
EVENT_TYPE_LEN = 64


class OutboxEvent(Base):
    """An account event written in the transaction of the change it tells (a CloudEvents 1.0 JSON document,
    ``payload``), waiting for the relay while ``sent_at`` is None. ``id`` orders them: per account it is the
    order of the changes (the account's ``event_streams`` row serialises them)."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index(None, "sent_at", "id"), Index(None, "account_id", "sequence"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LEN), unique=True)
    account_id: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(EVENT_TYPE_LEN))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class EventStream(Base):
    """Per account: the last event's sequence number, and whether the account was erased (after which
    nothing more about it is ever written to the outbox). Only the account's number, no personal data."""

    __tablename__ = "event_streams"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(Integer)
    erased: Mapped[bool]


class InboundEvent(Base):
    """A customer event from the CRM, applied (or found stale): its id is recorded in the same
    transaction, so a redelivery changes nothing."""

    __tablename__ = "inbound_events"

    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LEN), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class CustomerSequence(Base):
    """The newest `sequence` applied per customer (by code key): an older event never overwrites it."""

    __tablename__ = "customer_sequences"

    code_key: Mapped[str] = mapped_column(String(CUSTOMER_CODE_LEN), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
