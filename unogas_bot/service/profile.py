"""Changing the profile after login: password, e-mail, phone, security question (GDPR art. 16).

Each change is asked for after the current password (`password_check.confirm_password`, counted and limited
like a login); the forms call these only with a confirmed password and the session's account. Every change
is one unit of work with its audit event.

* A new password ends every *other* session of the profile: whoever else was logged in may be the reason
  for the change. The customer's own session stays.
* A new e-mail address is counted like registration's: each "already in use" answer is audited and limited
  per Telegram user and per customer code (`registration.email_in_use`), and the database's unique
  constraint settles a race.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unogas_bot.domain import AccountNotFound, AccountView, EmailTaken, normalize_email
from unogas_bot.service import registration
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import (
    AccountGone,
    EmailAccepted,
    EmailInUse,
    ProfileChanged,
    TooManyEmailsInUse,
)

if TYPE_CHECKING:
    from unogas_bot.service.context import Services


async def _changed(services: Services, account_id: int) -> ProfileChanged | AccountGone:
    """The profile as it is now, after the change committed."""
    async with services.reading() as view:
        account = await view.accounts.get(account_id)
    return AccountGone() if account is None else ProfileChanged(account)


async def change_password(
    services: Services, user_id: int, account_id: int, password_hash: str
) -> ProfileChanged | AccountGone:
    """Store the new password's hash; every other session of the profile ends."""
    async with services.uow() as uow:
        try:
            code = await uow.accounts.change_password(account_id, password_hash, keep_session_of=user_id)
        except AccountNotFound:
            return AccountGone()
        await audit(uow, "password_changed", None, user_id, account_id=account_id, customer_code=code)
        await uow.commit()
    return await _changed(services, account_id)


async def change_email(
    services: Services, user_id: int, account: AccountView, email: str
) -> ProfileChanged | EmailInUse | TooManyEmailsInUse | AccountGone:
    """Make `email` the profile's user ID, if no other profile uses it."""
    if normalize_email(email) == account.email:
        return ProfileChanged(account)  # the same address: nothing to count, nothing to change
    try:
        async with services.uow() as uow:
            outcome = await registration.email_in_use(
                uow, services, user_id, account.customer_code, email, check=True
            )
            if not isinstance(outcome, EmailAccepted):
                await uow.commit()  # the "in use" answer is counted and audited
                return outcome
            await uow.profiles.change_email(account.id, email)
            await audit(uow, "email_changed", account, user_id)
            await uow.commit()
    except AccountNotFound:
        return AccountGone()
    except EmailTaken:  # taken meanwhile
        return await registration.lost_the_race(services, user_id, account.customer_code)
    return await _changed(services, account.id)


async def change_phone(
    services: Services, user_id: int, account: AccountView, phone: str | None
) -> ProfileChanged | AccountGone:
    """A new phone number (E.164), or None to remove it."""
    async with services.uow() as uow:
        try:
            await uow.profiles.change_phone(account.id, phone)
        except AccountNotFound:
            return AccountGone()
        await audit(uow, "phone_changed" if phone else "phone_removed", account, user_id)
        await uow.commit()
    return await _changed(services, account.id)


async def change_question(
    services: Services, user_id: int, account: AccountView, question: str, answer_hash: str
) -> ProfileChanged | AccountGone:
    """A new security question and its answer (hashed by the form, as at registration)."""
    async with services.uow() as uow:
        try:
            await uow.profiles.change_question(account.id, question, answer_hash)
        except AccountNotFound:
            return AccountGone()
        await audit(uow, "question_changed", account, user_id)
        await uow.commit()
    return await _changed(services, account.id)
