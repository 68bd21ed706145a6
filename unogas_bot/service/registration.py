"""Registration: the identity check, the choice of the e-mail address and saving the profile.

The identity check and the e-mail choice run no bcrypt, so each is a single unit of work: the keys are
locked, the window counted, the check made and its outcome recorded in one transaction, which is what
makes their limits hold under concurrency. The usual outcome records nothing (the identity matches, the
address is free), so on SQLite the unit defers its BEGIN to a write that then never comes.

Limits (per hour, per Telegram user *and* per customer code, so neither many Telegram accounts nor many
customer codes get around them):
* failed identity checks: `verify_attempts_per_hour` per Telegram user (its own bucket: one stranger who
  knows a customer code cannot hold up the customer's registration), `verify_attempts_per_code_per_hour`
  per customer code from every Telegram user together; which datum did not match is never told. A typed
  code that is no registry customer's is counted the same, under this process's keyed digest, and never
  written anywhere in clear (it may be a password typed at the wrong question);
* "address already in use" answers: `email_in_use_per_hour`, each audited; once used up, the next address
  is refused whatever it is, so the refusal itself tells nothing about the address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unogas_bot.domain import (
    CustomerAlreadyRegistered,
    CustomerRecord,
    EmailTaken,
    NewAccount,
    UnknownCustomer,
    keys,
)
from unogas_bot.service import limits
from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import (
    AlreadyRegistered,
    CustomerGone,
    CustomerTaken,
    EmailAccepted,
    EmailInUse,
    EmailOutcome,
    IdentityMismatch,
    IdentityVerified,
    Registered,
    RegisterOutcome,
    TooManyEmailsInUse,
    VerificationLocked,
    VerifyOutcome,
)

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


async def verify_identity(services: Services, user_id: int, identity: CustomerRecord) -> VerifyOutcome:
    """Check what the customer typed against the registry (the data on the bill)."""
    settings = services.settings
    user = keys.telegram_key(user_id)
    known = limits.customer_key(identity.customer_code)
    unknown = limits.unknown_customer_key(services.mac, identity.customer_code)
    # Deferred: a matching identity writes nothing, and then no transaction is needed.
    async with services.uow(deferred=True) as uow:
        check = await uow.registry.check_identity(  # the keys locked first, then counted
            identity.customer_code,
            kind=limits.VERIFY,
            first=user,
            second=known,
            unknown=unknown,
            since=services.clock() - limits.HOUR,
            locked=True,
        )
        # This Telegram user's own failures, and every user's on this code: whichever is nearer its limit.
        left = min(
            settings.limits.verify_attempts_per_hour - check.by_first,
            settings.limits.verify_attempts_per_code_per_hour - check.by_second,
        )
        if left <= 0:
            return VerificationLocked()
        record = check.match(identity)
        if record is None:
            # What was typed as a code is kept only if it is a registry customer's (as the registry prints
            # it): anything else may be a secret typed at the wrong question.
            printed = check.printed_code
            for key in (user, known if printed else unknown):
                await uow.attempts.add(limits.VERIFY, key)
            await audit(
                uow,
                "registration_identity_failed",
                None,
                user_id,
                "" if printed else "no registry customer's code",
                customer_code=printed,
            )
            await uow.commit()
            return IdentityMismatch(left - 1) if left > 1 else VerificationLocked()
        if check.has_account:
            return AlreadyRegistered()
        return IdentityVerified(record)


async def choose_email(services: Services, user_id: int, customer_code: str, email: str) -> EmailOutcome:
    """May the verified customer `customer_code` take `email` as user ID?"""
    # Deferred: most addresses are free, and then the unit writes nothing and needs no transaction.
    async with services.uow(deferred=True) as uow:
        outcome = await email_in_use(uow, services, user_id, customer_code, email, check=True)
        if isinstance(outcome, EmailInUse):
            await uow.commit()
        return outcome


async def email_in_use(
    uow: UnitOfWork, services: Services, user_id: int, customer_code: str, email: str, *, check: bool
) -> EmailOutcome:
    """Count (and audit) an "address in use" answer, within the hour's limit. With `check`, the address
    is looked up first (with the counts, in one look-up) and a free one costs nothing."""
    limit = services.settings.limits.email_in_use_per_hour
    counted = (keys.telegram_key(user_id), limits.customer_key(customer_code))
    if check:  # the keys locked first, then counted
        used, taken = await uow.accounts.email_probe(
            email,
            kind=limits.EMAIL_IN_USE,
            first=counted[0],
            second=counted[1],
            window=limits.HOUR,
            locked=True,
        )
    else:
        await uow.attempts.lock(*counted)
        used, taken = await uow.attempts.most_since(limits.EMAIL_IN_USE, *counted, limits.HOUR), True
    if used >= limit:
        return TooManyEmailsInUse()
    if not taken:
        return EmailAccepted()
    for key in counted:
        await uow.attempts.add(limits.EMAIL_IN_USE, key)
    await audit(uow, "registration_email_in_use", None, user_id, customer_code=customer_code)
    return EmailInUse(limit - used - 1)


async def lost_the_race(
    services: Services, user_id: int, customer_code: str
) -> EmailInUse | TooManyEmailsInUse:
    """The address was free when checked but the database's unique constraint refused it at the save: the
    database had the last word, so it counts (and is audited) as an "in use" answer."""
    async with services.uow() as uow:
        outcome = await email_in_use(uow, services, user_id, customer_code, "", check=False)
        await uow.commit()
    assert not isinstance(outcome, EmailAccepted)  # without the check, an answer is always counted
    return outcome


async def register(services: Services, new: NewAccount) -> RegisterOutcome:
    """Save the profile in one transaction (the "Salva" of the seed), or nothing at all."""
    try:
        async with services.uow() as uow:
            account = await uow.accounts.register(new)
            await audit(uow, "registered", account, new.telegram_user_id)
            await uow.commit()
            return Registered(account)
    except CustomerAlreadyRegistered:
        if saved := await _saved_before(services, new):
            return saved
        return CustomerTaken()
    except EmailTaken:
        if saved := await _saved_before(services, new):
            return saved
        return await lost_the_race(services, new.telegram_user_id, new.customer_code)
    except UnknownCustomer:
        return CustomerGone()


async def _saved_before(services: Services, new: NewAccount) -> Registered | None:
    """This very draft was saved already (the confirmation was lost and "Salva" pressed again): only this
    draft holds this password hash."""
    async with services.reading() as view:
        account = await view.accounts.get_by_customer_code(new.customer_code)
    if (
        account is not None
        and account.registered_by == new.telegram_user_id
        and account.password_hash == new.password_hash
    ):
        return Registered(account)
    return None
