"""Password recovery: e-mail and customer code, the account's own question, then a new password.

* The identity (e-mail and customer code of one account) gets one generic answer on any miss, after the
  same work, a dummy bcrypt check included; misses are limited per Telegram user
  (`verify_attempts_per_hour`).
* Each answer is reserved before its bcrypt check, like a login (see service/login.py): at most
  `recovery_failures` answers are checked per `recovery_lock` window, however many arrive at once;
  reaching the limit locks recovery for the account. Right and wrong answers are audited.
* The new password follows the registration's rules with the account's own data. It may equal the old
  one: refusing that would tell whoever types it that they guessed the current password.
* Saving it ends every session of the account and lifts the login lock, in one transaction: the owner has
  just proved who they are, and a guesser does not know the new password.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from storage.accounts import AccountNotFound, AccountView
from unogas_bot import rules
from unogas_bot.service import limits
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import (
    AccountGone,
    AnswerAccepted,
    AnswerOutcome,
    AnswerWrong,
    IdentifyOutcome,
    IdentityMismatch,
    PasswordAcceptable,
    PasswordChanged,
    PasswordRefused,
    RecoveryLocked,
    RecoveryQuestion,
    TooManyMismatches,
)

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


async def mismatches_blocked_until(services: Services, user_id: int) -> datetime | None:
    """Until when the Telegram user may not try another identity (None: they may)."""
    async with services.uow() as uow:
        return await _mismatch_block(uow, services, limits.telegram_key(user_id))


async def _mismatch_block(uow: UnitOfWork, services: Services, user: str) -> datetime | None:
    limit = services.settings.verify_attempts_per_hour
    if await uow.attempts.count_since(limits.RECOVERY_MISMATCH, user, limits.HOUR) < limit:
        return None
    # Free again (for one more try) when the oldest miss leaves the window.
    return await uow.attempts.held_until(limits.RECOVERY_MISMATCH, user, limits.HOUR)


async def identify(services: Services, user_id: int, email: str, customer_code: str) -> IdentifyOutcome:
    """Do `email` and `customer_code` belong to one account? Then its security question."""
    services.hash_budget.take(user_id)
    user = limits.telegram_key(user_id)
    async with services.uow() as uow:
        await uow.attempts.lock(user)
        blocked = await _mismatch_block(uow, services, user)
        if blocked is not None:
            return TooManyMismatches(blocked)
        account = await uow.accounts.get_by_email(email)
        if account is None or rules.customer_code.key(account.customer_code) != rules.customer_code.key(
            customer_code
        ):
            await uow.attempts.add(limits.RECOVERY_MISMATCH, user)
            detail = "wrong customer code" if account else "unknown e-mail"
            await audit(uow, "recovery_identity_failed", account, user_id, detail)
            misses = await uow.attempts.count_since(limits.RECOVERY_MISMATCH, user, limits.HOUR)
            blocked = await _mismatch_block(uow, services, user)
            await uow.commit()
            outcome: IdentifyOutcome = (
                IdentityMismatch(services.settings.verify_attempts_per_hour - misses)
                if blocked is None
                else TooManyMismatches(blocked)
            )
        else:
            locked = _recovery_locked_until(services, account)
            outcome = (
                RecoveryLocked(locked) if locked else RecoveryQuestion(account.id, account.security_question)
            )
    # Every identity check costs one bcrypt check, matching or not: the same delay for every answer.
    await services.hasher.verify(customer_code, None)
    return outcome


async def check_answer(services: Services, user_id: int, account_id: int, answer: str) -> AnswerOutcome:
    """Check the answer to the account's security question; reserved before it is checked."""
    settings = services.settings
    services.hash_budget.take(user_id)
    key = limits.account_key(account_id)
    async with services.uow() as uow:  # reserve
        await uow.attempts.lock(key)
        account = await uow.accounts.get(account_id)
        if account is None:
            return AccountGone()
        locked = _recovery_locked_until(services, account)
        if locked is None:
            wrong = await uow.attempts.count_since(limits.RECOVERY_WRONG, key, settings.recovery_lock)
            if wrong >= settings.recovery_failures:  # the limit is taken by answers still being checked
                locked = services.clock() + settings.recovery_lock
        if locked is not None:
            return RecoveryLocked(locked)
        reserved = await uow.attempts.add(limits.RECOVERY_WRONG, key)
        await uow.commit()

    right = await services.hasher.verify(answer, account.answer_hash)

    async with services.uow() as uow:  # record the outcome
        if right:
            await uow.attempts.take_back([reserved])
            await audit(uow, "recovery_answer_ok", account, user_id)
            await uow.commit()
            return AnswerAccepted()
        await uow.attempts.lock(key)
        await audit(uow, "recovery_failed", account, user_id, "wrong security answer")
        wrong = await uow.attempts.count_since(limits.RECOVERY_WRONG, key, settings.recovery_lock)
        if wrong < settings.recovery_failures:
            await uow.commit()
            return AnswerWrong(settings.recovery_failures - wrong, account.security_question)
        until = services.clock() + settings.recovery_lock
        try:
            await uow.accounts.set_recovery_lock(account.id, until)
        except AccountNotFound:
            return AccountGone()
        await audit(uow, "recovery_locked", account, user_id, f"{wrong} wrong security answers")
        await uow.commit()
        return RecoveryLocked(until)


async def check_new_password(
    services: Services, account_id: int, password: str
) -> PasswordAcceptable | PasswordRefused | AccountGone:
    """The registration's password rules, with the account's own data as the personal data to avoid."""
    account = await services.accounts.get(account_id)
    if account is None:
        return AccountGone()
    try:
        rules.password.validate(password, personal_data(account))
    except rules.Invalid as bad:
        return PasswordRefused(bad.reason, dict(bad.params))
    return PasswordAcceptable()


async def set_new_password(
    services: Services, user_id: int, account_id: int, password_hash: str
) -> PasswordChanged | AccountGone:
    """Store the new password, end every session, forget the failures and lift the login lock: at once."""
    key = limits.account_key(account_id)
    async with services.uow() as uow:
        try:
            await uow.accounts.change_password(account_id, password_hash, telegram_user_id=user_id)
            await uow.accounts.set_login_lock(account_id, None)
        except AccountNotFound:
            return AccountGone()
        for kind in (limits.RECOVERY_WRONG, limits.LOGIN_FAILED, limits.LOGIN_LOCK):
            await uow.attempts.clear(kind, key)
        await uow.commit()
    return PasswordChanged()


def personal_data(account: AccountView) -> list[str]:
    """What the new password must not contain: the same data the registration forbids."""
    return rules.password.personal_data(
        customer_code=account.customer_code,
        tax_code=account.tax_code,
        first_name=account.first_name,
        last_name=account.last_name,
        company_name=account.company_name,
        email=account.email,
    )


def _recovery_locked_until(services: Services, account: AccountView) -> datetime | None:
    until = account.recovery_locked_until
    return until if until is not None and until > services.clock() else None
