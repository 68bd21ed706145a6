"""Customer-area accounts, their Telegram sessions, locks and audit trail.

E-mail addresses are lower-cased (and stripped) here before they are stored or looked up, so the plain
unique constraint on ``accounts.email`` makes them unique case-insensitively.

Races (two registrations for the same customer or the same address) are settled by the database's unique
constraints, never by checking first: the loser gets ``EmailTaken`` or ``CustomerAlreadyRegistered`` and
nothing of its attempt is saved.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, case, delete, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.attempts import of_account, window_count
from storage.db import AUDITED, Lookup, upsert_statement
from storage.models import (
    CUSTOMER_CODE_LEN,
    DETAIL_LEN,
    Account,
    Attempt,
    AuditEvent,
    Customer,
    TelegramSession,
)
from unogas_bot import rules
from unogas_bot.clock import utcnow


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What a registration stores; hashes are computed by the caller, never here."""

    customer_code: str
    email: str
    password_hash: str = field(repr=False)  # hashes stay out of reprs, hence out of logs and tracebacks
    security_question: str
    answer_hash: str = field(repr=False)
    phone: str | None
    telegram_user_id: int
    # The privacy notice acknowledged before any data was given (its version and when).
    privacy_version: str | None = None
    privacy_acknowledged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account with its customer's registry data: a detached snapshot, safe to keep anywhere."""

    id: int
    customer_code: str
    kind: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    tax_code: str
    email: str
    phone: str | None
    security_question: str
    password_hash: str = field(repr=False)
    answer_hash: str = field(repr=False)
    registered_at: datetime
    registered_by: int
    password_changed_at: datetime
    login_locked_until: datetime | None
    recovery_locked_until: datetime | None
    privacy_version: str | None = None
    privacy_acknowledged_at: datetime | None = None
    owner_telegram_user_id: int | None = None

    @property
    def owner(self) -> int:
        """The Telegram account the profile trusts: the one that last logged in, or else registered it."""
        return self.registered_by if self.owner_telegram_user_id is None else self.owner_telegram_user_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    event: str
    telegram_user_id: int | None
    detail: str
    # An erased profile's events keep the number, never the code.
    account_id: int | None = None
    customer_code: str | None = None


class RegistrationConflict(Exception):
    """A registration that cannot be saved; nothing was stored."""


class EmailTaken(RegistrationConflict):
    """Another account already uses this e-mail address (compared case-insensitively)."""


class CustomerAlreadyRegistered(RegistrationConflict):
    """The customer already has an account."""


class UnknownCustomer(RegistrationConflict):
    """No customer with this code in the registry."""


class AccountNotFound(LookupError):
    """No account with this id (e.g. deleted meanwhile)."""


# The support operator on whose behalf the current task acts (the command line's `--operator`), or None for
# the chat. A context variable rather than a parameter: the support tools act through the same use cases as
# the chat (erasure, export), and every audit event those write must name the operator without each use case
# and each of its callers carrying one more argument. Set only through `acting_operator`.
_OPERATOR: ContextVar[str | None] = ContextVar("unogas_operator", default=None)


@contextmanager
def acting_operator(name: str) -> Iterator[None]:
    """Within the block (and the tasks and event loops started in it), every audit event this module
    records names operator `name` in its detail text ("...; operator NAME")."""
    token = _OPERATOR.set(name)
    try:
        yield
    finally:
        _OPERATOR.reset(token)


def operator_detail(detail: str) -> str:
    operator = _OPERATOR.get()
    if operator is None:
        return detail
    return f"{detail}; operator {operator}" if detail else f"operator {operator}"


def normalize_email(email: str) -> str:
    """The stored form of an address: NFKC-normalised (as unogas_bot/rules/email.py does), stripped and
    lower-cased."""
    return unicodedata.normalize("NFKC", email).strip().lower()


_VIEW_COLUMNS = (
    Account.id,
    Customer.customer_code,
    Customer.kind,
    Customer.first_name,
    Customer.last_name,
    Customer.company_name,
    Customer.tax_code,
    Account.email,
    Account.phone,
    Account.security_question,
    Account.password_hash,
    Account.answer_hash,
    Account.registered_at,
    Account.registered_by,
    Account.password_changed_at,
    Account.login_locked_until,
    Account.recovery_locked_until,
    Account.privacy_version,
    Account.privacy_acknowledged_at,
    Account.owner_telegram_user_id,
)


# The e-mail step in one statement (a Lookup: one driver call on SQLite): the two keys' counts of `kind` in
# the window and whether the address is taken (most addresses are free, and then nothing more is written).
_EMAIL_PROBE = Lookup(
    select(
        window_count("first"),
        window_count("second"),
        select(Account.id).where(Account.email == bindparam("email")).exists(),
    )
)


def _select_views() -> Select[Any]:
    return select(*_VIEW_COLUMNS).join(Customer, Customer.id == Account.customer_id)


def _view(row: Any) -> AccountView:
    return AccountView(**{column.key: getattr(row, column.key) for column in _VIEW_COLUMNS})


def _constraint_text(exc: IntegrityError) -> str:
    """What the driver tells about the violated constraint, for both SQLite and PostgreSQL.

    asyncpg names the constraint ("uq_accounts_email"); SQLite only says "UNIQUE constraint failed:
    accounts.email". Only the first line is used: PostgreSQL's DETAIL line quotes the (user-typed) values.
    """
    name = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    if name:
        return str(name).lower()
    return str(exc.orig).partition("\n")[0].lower()


def _registration_conflict(exc: IntegrityError, new: NewAccount) -> RegistrationConflict | None:
    text = _constraint_text(exc)
    if "uq_accounts_email" in text or "accounts.email" in text:
        return EmailTaken(normalize_email(new.email))
    if "uq_accounts_customer_id" in text or "accounts.customer_id" in text:
        return CustomerAlreadyRegistered(new.customer_code)
    if "foreign key" in text or "fk_accounts_customer_id_customers" in text:
        return UnknownCustomer(new.customer_code)  # the customer vanished meanwhile
    return None


class Accounts:
    """Accounts, their Telegram sessions, locks and audit trail, inside the caller's transaction.

    Used through a unit of work (storage/unit_of_work.py): nothing here commits; whoever opened the
    transaction decides. ``AccountRepository`` offers the same on a bare `Database`.
    """

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    # --- registration and look-ups --------------------------------------------------------------------

    async def register(self, new: NewAccount) -> AccountView:
        """Create the account of ``new.customer_code`` with a "registered" audit event.

        Raises ``UnknownCustomer``, ``EmailTaken`` or ``CustomerAlreadyRegistered``; the caller's
        transaction must then be rolled back (PostgreSQL refuses anything more in it).
        """
        session, now = self._session, self._clock()
        customer_id = (
            await session.execute(
                select(Customer.id).where(Customer.code_key == rules.customer_code.key(new.customer_code))
            )
        ).scalar_one_or_none()
        if customer_id is None:
            raise UnknownCustomer(new.customer_code)
        try:
            account_id = (
                await session.execute(
                    insert(Account)
                    .values(
                        customer_id=customer_id,
                        email=normalize_email(new.email),
                        password_hash=new.password_hash,
                        security_question=new.security_question,
                        answer_hash=new.answer_hash,
                        phone=new.phone,
                        registered_at=now,
                        registered_by=new.telegram_user_id,
                        owner_telegram_user_id=new.telegram_user_id,
                        password_changed_at=now,
                        privacy_version=new.privacy_version,
                        privacy_acknowledged_at=new.privacy_acknowledged_at,
                    )
                    .returning(Account.id)
                )
            ).scalar_one()
        except IntegrityError as exc:
            conflict = _registration_conflict(exc, new)
            if conflict is None:
                raise
            raise conflict from exc
        await self.add_event(
            "registered",
            account_id=account_id,
            customer_code=new.customer_code,
            telegram_user_id=new.telegram_user_id,
        )
        row = (await session.execute(_select_views().where(Account.id == account_id))).one()
        return _view(row)

    async def email_probe(
        self, email: str, *, kind: str, first: str, second: str, window: timedelta
    ) -> tuple[int, bool]:
        """(the larger of the keys `first` and `second`'s counts of `kind` in the last `window`, whether
        `email` belongs to a profile), in one look-up."""
        conn = await self._session.connection()
        ((count_first, count_second, taken),) = await _EMAIL_PROBE.rows(
            conn,
            kind=kind,
            first=first,
            second=second,
            since=self._clock() - window,
            email=normalize_email(email),
        )
        return max(int(count_first), int(count_second)), bool(taken)

    async def get(self, account_id: int) -> AccountView | None:
        return await self._one(Account.id == account_id)

    async def get_by_email(self, email: str) -> AccountView | None:
        return await self._one(Account.email == normalize_email(email))

    async def get_by_customer_code(self, customer_code: str) -> AccountView | None:
        return await self._one(Customer.code_key == rules.customer_code.key(customer_code))

    async def _one(self, condition: Any) -> AccountView | None:
        row = (await self._session.execute(_select_views().where(condition))).one_or_none()
        return None if row is None else _view(row)

    # --- Telegram sessions ----------------------------------------------------------------------------

    async def link_session(self, account_id: int, telegram_user_id: int, ttl: timedelta) -> None:
        """Log the Telegram user into the account for ``ttl``, replacing any session that user had."""
        now = self._clock()
        session = self._session
        stmt = upsert_statement(
            session.bind.dialect.name,
            TelegramSession.__table__,  # type: ignore[arg-type]
            key="telegram_user_id",
            update=["account_id", "created_at", "expires_at"],
        )
        values = {
            "account_id": account_id,
            "telegram_user_id": telegram_user_id,
            "created_at": now,
            "expires_at": now + ttl,
        }
        try:
            await (await session.connection()).execute(stmt, values)
        except IntegrityError as exc:  # only the foreign key can fail here
            raise AccountNotFound(account_id) from exc

    async def make_owner(self, account_id: int, telegram_user_id: int) -> None:
        """The Telegram user just proved the password: the profile trusts its account from now on."""
        await self._session.execute(
            update(Account)
            .where(
                Account.id == account_id, Account.owner_telegram_user_id.is_distinct_from(telegram_user_id)
            )
            .values(owner_telegram_user_id=telegram_user_id)
        )

    async def session_lookup(self, telegram_user_id: int) -> tuple[AccountView | None, bool]:
        """The account the Telegram user is logged into and whether that session has expired."""
        row = (
            await self._session.execute(
                _select_views()
                .add_columns(TelegramSession.expires_at)
                .join(TelegramSession, TelegramSession.account_id == Account.id)
                .where(TelegramSession.telegram_user_id == telegram_user_id)
            )
        ).one_or_none()
        if row is None:
            return None, False
        return _view(row), row.expires_at <= self._clock()

    async def end_expired_session(self, telegram_user_id: int) -> None:
        await self._session.execute(
            delete(TelegramSession).where(
                TelegramSession.telegram_user_id == telegram_user_id,
                TelegramSession.expires_at <= self._clock(),
            )
        )

    async def end_session(self, telegram_user_id: int) -> bool:
        """Log the Telegram user out; False if they were not logged in."""
        result = await self._session.execute(
            delete(TelegramSession).where(TelegramSession.telegram_user_id == telegram_user_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def end_all_sessions(self, account_id: int) -> int:
        """Log every Telegram user out of the account; returns how many sessions ended."""
        result = await self._session.execute(
            delete(TelegramSession).where(TelegramSession.account_id == account_id)
        )
        return result.rowcount  # type: ignore[attr-defined]

    async def prune_sessions(self) -> int:
        """Delete every expired session; returns how many."""
        result = await self._session.execute(
            delete(TelegramSession).where(TelegramSession.expires_at <= self._clock())
        )
        return result.rowcount  # type: ignore[attr-defined]

    # --- password and locks ---------------------------------------------------------------------------

    async def change_password(
        self,
        account_id: int,
        new_hash: str,
        *,
        telegram_user_id: int | None = None,
        event: str = "password_recovered",
        keep_session: bool = False,
    ) -> None:
        """Set a new password hash, end every session of the account and audit `event` (by
        ``telegram_user_id``, the Telegram user who changed it, when known). With `keep_session` that
        user's own session stays: they changed it while logged in, and proved it with the old password."""
        code = await self._update(account_id, password_hash=new_hash, password_changed_at=self._clock())
        ended = delete(TelegramSession).where(TelegramSession.account_id == account_id)
        if keep_session and telegram_user_id is not None:
            ended = ended.where(TelegramSession.telegram_user_id != telegram_user_id)
        await self._session.execute(ended)
        await self.add_event(
            event, account_id=account_id, customer_code=code, telegram_user_id=telegram_user_id
        )

    async def rehash_password(self, account_id: int, old_hash: str, new_hash: str) -> bool:
        """Replace the stored hash by the same password hashed at another cost, unless it changed
        meanwhile; the password itself, its sessions and ``password_changed_at`` stay as they are."""
        result = await self._session.execute(
            update(Account)
            .where(Account.id == account_id, Account.password_hash == old_hash)
            .values(password_hash=new_hash)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_login_lock(self, account_id: int, until: datetime | None) -> None:
        """Refuse logins to the account until ``until`` (None lifts the lock)."""
        await self._update(account_id, login_locked_until=until)

    async def set_recovery_lock(self, account_id: int, until: datetime | None) -> None:
        """Refuse password recovery for the account until ``until`` (None lifts the lock)."""
        await self._update(account_id, recovery_locked_until=until)

    async def unlock(self, account_id: int) -> None:
        """Lift both locks and forget the account's attempts (key ``account_key(id)``); audit "unlocked"."""
        code = await self._update(account_id, login_locked_until=None, recovery_locked_until=None)
        await self._session.execute(delete(Attempt).where(of_account(account_id)))
        await self.add_event("unlocked", account_id=account_id, customer_code=code)

    async def _update(self, account_id: int, **values: Any) -> str:
        """Update the account's columns; returns its customer code, raises ``AccountNotFound``."""
        result = await self._session.execute(update(Account).where(Account.id == account_id).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise AccountNotFound(account_id)
        code = await self._customer_code(account_id)
        assert code is not None  # the row was just updated in this transaction
        return code

    async def _customer_code(self, account_id: int) -> str | None:
        return (
            await self._session.execute(
                select(Customer.customer_code)
                .join(Account, Account.customer_id == Customer.id)
                .where(Account.id == account_id)
            )
        ).scalar_one_or_none()

    # --- administration -------------------------------------------------------------------------------

    async def count(self) -> int:
        """How many accounts exist."""
        return (await self._session.execute(select(func.count()).select_from(Account))).scalar_one()

    async def list_accounts(self, page: int, page_size: int = 20) -> list[AccountView]:
        """One page of accounts, newest registration first; pages count from 1."""
        if page < 1 or page_size < 1:
            raise ValueError("page and page_size start at 1")
        rows = await self._session.execute(
            _select_views()
            .order_by(Account.registered_at.desc(), Account.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return [_view(row) for row in rows]

    async def delete(self, account_id: int) -> bool:
        """Delete the account, its sessions and attempts; the registry record stays. Audit "deleted"."""
        code = await self._customer_code(account_id)
        if code is None:
            return False
        # The foreign key cascades too; deleting explicitly does not depend on SQLite's pragma.
        await self.end_all_sessions(account_id)
        await self._session.execute(delete(Attempt).where(of_account(account_id)))
        await self._session.execute(delete(Account).where(Account.id == account_id))
        await self.add_event("deleted", account_id=account_id, customer_code=code)
        return True

    async def stored_hash_cost(self, sample: int = 1000) -> int | None:
        """The bcrypt cost most of the latest `sample` password hashes carry (None: no account yet).

        The dummy check of an unknown address is made at this cost, so it takes as long as a real one."""
        latest = select(Account.password_hash).order_by(Account.id.desc()).limit(sample).subquery()
        cost = func.substr(latest.c.password_hash, 5, 2)
        row = (
            await self._session.execute(
                select(cost).group_by(cost).order_by(func.count().desc(), cost.desc()).limit(1)
            )
        ).one_or_none()
        return int(row[0]) if row is not None and str(row[0]).isdigit() else None

    # --- audit trail ----------------------------------------------------------------------------------

    async def add_event(
        self,
        event: str,
        *,
        account_id: int | None = None,
        customer_code: str | None = None,
        telegram_user_id: int | None = None,
        detail: str = "",
    ) -> None:
        """Append an audit event. ``detail`` is short free text and must never contain a secret; inside
        `acting_operator` it also names the support operator."""
        detail = operator_detail(detail)
        self._session.info.setdefault(AUDITED, []).append(event)
        # Cut to the column sizes: an audit record must never make the audited action fail.
        code = customer_code[:CUSTOMER_CODE_LEN] if customer_code else customer_code
        # An event about a profile erased meanwhile (a check in flight during the erasure) is written
        # pseudonymised, as the erasure left the others: its number only. One statement of one shape
        # whatever the values (the login of an unknown address runs the same SQL as a known one's).
        number = literal(account_id, AuditEvent.account_id.type)
        alive = or_(number.is_(None), select(Account.id).where(Account.id == number).exists())
        await self._session.execute(
            insert(AuditEvent).values(
                at=self._clock(),
                event=event,
                account_id=account_id,
                customer_code=case((alive, literal(code, AuditEvent.customer_code.type)), else_=None),
                telegram_user_id=case((alive, literal(telegram_user_id, AuditEvent.telegram_user_id.type))),
                detail=detail[:DETAIL_LEN],
            )
        )
        # issue 24: an account change writes its event to the outbox in this same transaction.
        await outbox.on_audit(self._session, self._clock, event, account_id)

    async def recent_events(self, account_id: int, limit: int = 20) -> list[AuditEntry]:
        """The account's latest audit events, newest first (also after the account was deleted)."""
        rows = await self._session.execute(
            select(
                AuditEvent.at,
                AuditEvent.event,
                AuditEvent.telegram_user_id,
                AuditEvent.detail,
                AuditEvent.account_id,
                AuditEvent.customer_code,
            )
            .where(AuditEvent.account_id == account_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
        return [
            AuditEntry(row.at, row.event, row.telegram_user_id, row.detail, row.account_id, row.customer_code)
            for row in rows
        ]

    async def audit_trail(
        self, *, account_id: int | None = None, customer_code: str | None = None, limit: int = 500
    ) -> list[AuditEntry]:
        """The events of profile `account_id` or of customer `customer_code` (either may be None), oldest
        first, with the newest `limit` kept. Also after the profile was erased: its events stay under
        its number (without code or Telegram user); events before any profile (a failed identity
        check) carry only the code."""
        conditions: list[Any] = []
        if account_id is not None:
            conditions.append(AuditEvent.account_id == account_id)
        if customer_code is not None:
            conditions.append(
                code_key_sql(AuditEvent.customer_code) == rules.customer_code.key(customer_code)
            )
        if not conditions:
            return []
        newest = (
            select(AuditEvent)
            .where(or_(*conditions))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
            .subquery()
        )
        rows = await self._session.execute(select(newest).order_by(newest.c.at, newest.c.id))
        return [
            AuditEntry(row.at, row.event, row.telegram_user_id, row.detail, row.account_id, row.customer_code)
            for row in rows
        ]


def code_key_sql(column: Any) -> Any:
    """`rules.customer_code.key` in SQL (SQLite and PostgreSQL alike): audit rows keep the code as it was
    given, so "UG-100234" and "UG100234" must still meet."""
    for sign in ("-", "/", " "):
        column = func.replace(column, sign, "")
    return func.upper(column)
