"""Password recovery: e-mail and customer code, the account's own question, then a new password.

* The identity (e-mail and customer code of one account) gets one generic answer on any miss, after the
  same work, a dummy bcrypt check included; misses are limited per Telegram user
  (`verify_attempts_per_hour`).
* Each answer is reserved before its bcrypt check, like a login (see service/login.py): at most
  `recovery_failures` answers per Telegram user and `recovery_lock` window, and `recovery_strangers_per_hour`
  by every Telegram user but the owner together, however many arrive at once (service/strangers.py).
  Reaching a limit holds that user, or the strangers; never the owner for anyone else's answers. Right and
  wrong answers are audited.
* The new password follows the registration's rules with the account's own data. It may equal the old
  one: refusing that would tell whoever types it that they guessed the current password.
* Saving it ends every session of the account and forgets this user's failures, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from unogas_bot import rules
from unogas_bot.domain import AccountNotFound, AccountView, customer_code_key, keys
from unogas_bot.service import limits, strangers
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
        return await _mismatch_block(uow, services, keys.telegram_key(user_id))


async def _mismatch_block(uow: UnitOfWork, services: Services, user: str) -> datetime | None:
    limit = services.settings.limits.verify_attempts_per_hour
    if await uow.attempts.count_since(limits.RECOVERY_MISMATCH, user, limits.HOUR) < limit:
        return None
    # Free again (for one more try) when the oldest miss leaves the window.
    return await uow.attempts.held_until(limits.RECOVERY_MISMATCH, user, limits.HOUR)


async def identify(services: Services, user_id: int, email: str, customer_code: str) -> IdentifyOutcome:
    """Do `email` and `customer_code` belong to one account? Then its security question."""
    services.hash_budget.take(user_id)
    user = keys.telegram_key(user_id)
    async with services.uow() as uow:
        await uow.attempts.lock(user)
        blocked = await _mismatch_block(uow, services, user)
        if blocked is not None:
            return TooManyMismatches(blocked)
        account = await uow.accounts.get_by_email(email)
        if account is None or customer_code_key(account.customer_code) != customer_code_key(customer_code):
            await uow.attempts.add(limits.RECOVERY_MISMATCH, user)
            detail = "wrong customer code" if account else "unknown e-mail"
            await audit(uow, "recovery_identity_failed", account, user_id, detail)
            misses = await uow.attempts.count_since(limits.RECOVERY_MISMATCH, user, limits.HOUR)
            blocked = await _mismatch_block(uow, services, user)
            await uow.commit()
            outcome: IdentifyOutcome = (
                IdentityMismatch(services.settings.limits.verify_attempts_per_hour - misses)
                if blocked is None
                else TooManyMismatches(blocked)
            )
        else:
            locked = await _answers_held_until(uow, services, account, user_id)
            outcome = (
                RecoveryLocked(locked) if locked else RecoveryQuestion(account.id, account.security_question)
            )
    # Every identity check costs one bcrypt check, matching or not: the same delay for every answer.
    await services.hasher.verify(customer_code, None)
    return outcome


async def check_answer(services: Services, user_id: int, account_id: int, answer: str) -> AnswerOutcome:
    """Check the answer to the account's security question; reserved before it is checked. Each Telegram
    user has `recovery_failures` wrong answers an hour on the account; the users other than its owner also
    `recovery_strangers_per_hour` together (service/strangers.py), past which they wait and the owner
    does not."""
    settings = services.settings
    services.hash_budget.take(user_id)
    key, pair = keys.account_key(account_id), keys.pair_key(keys.account_key(account_id), user_id)
    async with services.uow() as uow:  # reserve
        await uow.attempts.lock(key, pair)
        account = await uow.accounts.get(account_id)
        if account is None:
            return AccountGone()
        trusted = strangers.trusted(account, user_id)
        stranger_on = None if trusted else account.id
        locked = await _answers_held_until(uow, services, account, user_id)
        if locked is not None:
            return RecoveryLocked(locked, stranger_on)
        reserved = [await uow.attempts.add(limits.RECOVERY_WRONG, pair)]
        if not trusted:
            reserved.append(await uow.attempts.add(limits.RECOVERY_STRANGERS, key))
        await uow.commit()

    right = await services.hasher.verify(answer, account.answer_hash)

    async with services.uow() as uow:  # record the outcome
        if right:
            await uow.attempts.take_back(reserved)
            await audit(uow, "recovery_answer_ok", account, user_id)
            await uow.commit()
            return AnswerAccepted()
        await uow.attempts.lock(key, pair)
        detail = "wrong security answer" + ("" if trusted else " (another Telegram account)")
        await audit(uow, "recovery_failed", account, user_id, detail)
        wrong = await uow.attempts.count_since(limits.RECOVERY_WRONG, pair, settings.limits.recovery_lock)
        held = None if trusted else await _hold_strangers_if_over(uow, services, account, user_id)
        if wrong < settings.limits.recovery_failures and held is None:
            await uow.commit()
            return AnswerWrong(
                settings.limits.recovery_failures - wrong, account.security_question, stranger_on
            )
        until = held or services.clock() + settings.limits.recovery_lock
        if wrong >= settings.limits.recovery_failures:
            until = max(until, services.clock() + settings.limits.recovery_lock)
            await audit(uow, "recovery_locked", account, user_id, f"{wrong} wrong security answers")
        await uow.commit()
        return RecoveryLocked(until, stranger_on)


async def _answers_held_until(
    uow: UnitOfWork, services: Services, account: AccountView, user_id: int
) -> datetime | None:
    """Until when this Telegram user may not answer the account's question (None: it may): its own
    wrong answers of the hour, and for a user other than the owner the strangers' (service/strangers.py)."""
    s = services.settings.limits
    pair = keys.pair_key(keys.account_key(account.id), user_id)
    held = await strangers.full_until(
        uow, services, limits.RECOVERY_WRONG, pair, s.recovery_failures, s.recovery_lock
    )
    if held is None and not strangers.trusted(account, user_id):
        held = _recovery_locked_until(services, account)  # the strangers' hold shown on the profile
    if held is None and not strangers.trusted(account, user_id):
        held = await strangers.full_until(
            uow,
            services,
            limits.RECOVERY_STRANGERS,
            keys.account_key(account.id),
            s.recovery_strangers_per_hour,
            limits.HOUR,
        )
    return held


async def _hold_strangers_if_over(
    uow: UnitOfWork, services: Services, account: AccountView, user_id: int
) -> datetime | None:
    """Once the strangers' answers of the hour are used up, until when they wait; the first time, the hold
    is shown on the profile (`accounts show`, lifted by `accounts unlock`) and audited."""
    s = services.settings.limits
    until = await strangers.full_until(
        uow,
        services,
        limits.RECOVERY_STRANGERS,
        keys.account_key(account.id),
        s.recovery_strangers_per_hour,
        limits.HOUR,
    )
    if until is None:
        return None
    if _recovery_locked_until(services, account) is None:
        try:
            await uow.accounts.set_recovery_lock(account.id, until)
        except AccountNotFound:  # erased meanwhile
            return until
        await audit(
            uow,
            "recovery_strangers_held",
            account,
            user_id,
            f"{s.recovery_strangers_per_hour} wrong answers by other Telegram accounts in an hour: they wait",
        )
    return until


async def check_new_password(
    services: Services, account_id: int, password: str
) -> PasswordAcceptable | PasswordRefused | AccountGone:
    """The registration's password rules, with the account's own data as the personal data to avoid."""
    async with services.reading() as view:
        account = await view.accounts.get(account_id)
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
    """Store the new password, end every session and forget this user's failures: at once."""
    pair = keys.pair_key(keys.account_key(account_id), user_id)
    async with services.uow() as uow:
        try:
            code = await uow.accounts.change_password(account_id, password_hash)
        except AccountNotFound:
            return AccountGone()
        await audit(uow, "password_recovered", None, user_id, account_id=account_id, customer_code=code)
        # This user's own failures go; the strangers' counts stay (a new password is no reason to give them
        # new tries), and so does their hold.
        for kind in (limits.RECOVERY_WRONG, limits.LOGIN_FAILED, limits.LOGIN_LOCK):
            await uow.attempts.clear(kind, pair)
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
