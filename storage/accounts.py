"""Customer-area accounts, their Telegram sessions, locks and audit trail.

E-mail addresses are lower-cased (and stripped) here before they are stored or looked up, so the plain
unique constraint on ``accounts.email`` makes them unique case-insensitively.

Races (two registrations for the same customer or the same address) are settled by the database's unique
constraints, never by checking first: the loser gets ``EmailTaken`` or ``CustomerAlreadyRegistered`` and
nothing of its attempt is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.attempts import Attempts, keys_locked, lock_keys, locked_window_count, window_count
from storage.audit_trail import AuditTrail
from storage.db import Lookup, upsert_statement
from storage.models import (
    Account,
    Customer,
    TelegramSession,
)
from unogas_bot.clock import utcnow
from unogas_bot.domain import (
    AccountNotFound,
    AccountView,
    CustomerAlreadyRegistered,
    CustomerRecord,
    EmailTaken,
    NewAccount,
    RegistrationConflict,
    UnknownCustomer,
    customer_code_key,
    normalize_email,
)

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

# The same on PostgreSQL with the keys' lock taken first, in the same statement (storage/attempts.py).
_LOCKED = keys_locked()
_EMAIL_PROBE_LOCKED = Lookup(
    select(
        locked_window_count("first", _LOCKED),
        locked_window_count("second", _LOCKED),
        select(Account.id).where(Account.email == bindparam("email")).exists(),
    ).select_from(_LOCKED)
)


def _select_views() -> Select[Any]:
    return select(*_VIEW_COLUMNS).join(Customer, Customer.id == Account.customer_id)


_CUSTOMER_KEYS = ("customer_code", "kind", "first_name", "last_name", "company_name", "tax_code")
_ACCOUNT_KEYS = tuple(column.key for column in _VIEW_COLUMNS if column.key not in _CUSTOMER_KEYS)


def _view(row: Any) -> AccountView:
    """A row of `_VIEW_COLUMNS` as the domain's account, its customer's record inside."""
    customer = CustomerRecord(*(getattr(row, key) for key in _CUSTOMER_KEYS))
    return AccountView(customer=customer, **{key: getattr(row, key) for key in _ACCOUNT_KEYS})


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


class Accounts(AuditTrail):
    """Accounts, their Telegram sessions, locks and audit trail, inside the caller's transaction.

    Used through a unit of work (storage/unit_of_work.py): nothing here commits; whoever opened the
    transaction decides. ``AccountStore`` offers the same on a bare `Database`.
    """

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock

    # --- registration and look-ups --------------------------------------------------------------------

    async def register(self, new: NewAccount) -> AccountView:
        """Create the account of ``new.customer_code`` (its "registered" audit event is the use case's).

        Raises ``UnknownCustomer``, ``EmailTaken`` or ``CustomerAlreadyRegistered``; the caller's
        transaction must then be rolled back (PostgreSQL refuses anything more in it).
        """
        session, now = self._session, self._clock()
        customer_id = (
            await session.execute(
                select(Customer.id).where(Customer.code_key == customer_code_key(new.customer_code))
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
        row = (await session.execute(_select_views().where(Account.id == account_id))).one()
        return _view(row)

    async def email_probe(
        self, email: str, *, kind: str, first: str, second: str, window: timedelta, locked: bool = False
    ) -> tuple[int, bool]:
        """(the larger of the keys `first` and `second`'s counts of `kind` in the last `window`, whether
        `email` belongs to a profile), in one look-up. With `locked` the two keys are locked first, as
        `Attempts.lock` does (on PostgreSQL in the look-up's own statement, storage/attempts.py's
        `keys_locked`)."""
        conn = await self._session.connection()
        params = {
            "kind": kind,
            "first": first,
            "second": second,
            "since": self._clock() - window,
            "email": normalize_email(email),
        }
        if locked and conn.dialect.name == "postgresql":
            lookup, params["lock_keys"] = _EMAIL_PROBE_LOCKED, lock_keys((first, second))
        else:
            lookup = _EMAIL_PROBE  # SQLite: the unit's write turn is the lock
        ((count_first, count_second, taken),) = await lookup.rows(conn, **params)
        return max(int(count_first), int(count_second)), bool(taken)

    async def get(self, account_id: int) -> AccountView | None:
        return await self._one(Account.id == account_id)

    async def get_by_email(self, email: str) -> AccountView | None:
        return await self._one(Account.email == normalize_email(email))

    async def get_by_customer_code(self, customer_code: str) -> AccountView | None:
        return await self._one(Customer.code_key == customer_code_key(customer_code))

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
        keep_session_of: int | None = None,
    ) -> str:
        """Set a new password hash and end every session of the account but, when given, the one of
        Telegram user `keep_session_of` (who changed it while logged in, proving it with the old password).
        Returns the customer code; raises ``AccountNotFound``."""
        code = await self._update(account_id, password_hash=new_hash, password_changed_at=self._clock())
        ended = delete(TelegramSession).where(TelegramSession.account_id == account_id)
        if keep_session_of is not None:
            ended = ended.where(TelegramSession.telegram_user_id != keep_session_of)
        await self._session.execute(ended)
        return code

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

    async def unlock(self, account_id: int) -> str:
        """Lift both locks and forget the account's attempts (key ``account_key(id)``); returns the
        customer code."""
        code = await self._update(account_id, login_locked_until=None, recovery_locked_until=None)
        await Attempts(self._session, self._clock).forget_account(account_id)
        return code

    async def _update(self, account_id: int, **values: Any) -> str:
        """Update the account's columns; returns its customer code (for the audit event the caller
        writes), raises ``AccountNotFound``."""
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
