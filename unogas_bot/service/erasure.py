"""Erasure (GDPR art. 17): the profile, its Telegram sessions and attempts go; the audit trail stays only
pseudonymised, for the audit retention period (`AUDIT_RETENTION_DAYS`, then housekeeping deletes it).

What stays of the audit trail is what accountability needs (art. 5(2)): which events happened and when,
under the deleted profile's number, without customer code, e-mail, names, phone or Telegram user id.
The customer record (the billing registry's) stays, so the customer can register again with the same
customer code. The chat (`/cancella_profilo`) and the support tools (`accounts delete`) both call
`erase_profile`, so both erase the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unogas_bot.service.audit import audit
from unogas_bot.service.outcomes import AccountGone, Erased

if TYPE_CHECKING:
    from unogas_bot.service.context import Services


async def erase_profile(
    services: Services, account_id: int, *, by_support: bool = False
) -> Erased | AccountGone:
    """Erase the profile in one transaction (nothing at all if anything fails)."""
    async with services.uow() as uow:
        code = await uow.profiles.erase(account_id)
        if code is None:
            return AccountGone()
        who = "support staff" if by_support else "the customer"
        await audit(uow, "erased", None, detail=f"by {who}", account_id=account_id)
        await uow.commit()
    return Erased(code)


async def erase_own_profile(services: Services, user_id: int, account_id: int) -> Erased | AccountGone:
    """The customer's own erasure (/cancella_profilo), only while Telegram user `user_id` is still logged
    into `account_id`: checked and done in one transaction. Handled again after a crash, it answers as the
    first handling did, though the profile (and with it the session) is gone by then."""
    async with services.uow() as uow:
        if await uow.applied_before():
            return Erased("")
        account, expired = await uow.accounts.session_lookup(user_id)
        if account is None or expired or account.id != account_id:
            return AccountGone()
        code = await uow.profiles.erase(account_id)
        if code is None:
            return AccountGone()
        await audit(uow, "erased", None, detail="by the customer", account_id=account_id)
        await uow.commit()
    return Erased(code)
