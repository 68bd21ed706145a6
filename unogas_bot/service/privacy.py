"""The privacy notice (GDPR art. 13): which version a profile acknowledged, and when it must be shown again.

The short notice's text is in the catalogues (`privacy_notice`), the full one at `PRIVACY_NOTICE_URL`; the
version (`PRIVACY_NOTICE_VERSION`) names what the customer was shown. A registration stores the version
acknowledged before any personal data was asked; when the operator publishes a new version, each
logged-in customer is shown it once and that is recorded, with the time, in the profile and the audit.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING

from unogas_bot.domain import AccountNotFound, AccountView
from unogas_bot.service.audit import audit

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork
    from unogas_bot.service.context import Services


def current_version(services: Services) -> str:
    return services.settings.privacy_notice_version


def notice_url(services: Services) -> str:
    return services.settings.privacy_notice_url


def acknowledged_now(services: Services) -> tuple[str, datetime]:
    """What a registration stores when the customer presses "Continue" on the notice."""
    return current_version(services), services.clock()


def needs_notice(services: Services, account: AccountView) -> bool:
    """The profile's customer has not been shown the current version yet."""
    return account.privacy_version != current_version(services)


async def record_notice_shown(
    uow: UnitOfWork, services: Services, user_id: int, account: AccountView
) -> bool:
    """Within `uow`: when the profile's customer has not been shown the current notice, record that it is
    shown now (profile and audit). True when it is to be shown; False when seen already or the profile
    is gone."""
    if not needs_notice(services, account):
        return False
    version = current_version(services)
    try:
        await uow.profiles.record_privacy_notice(account.id, version)
    except AccountNotFound:
        return False
    await audit(uow, "privacy_notice_shown", account, user_id, f"version {version}")
    return True


async def shown_with_last_login(services: Services, user_id: int, account_id: int) -> bool:
    """Did the Telegram user's last login to the profile show the current notice? Its unit of work
    recorded the notice just before the login (service/login.py), so the two are adjacent in the trail.
    For a login handled again after a crash: the first handling recorded the notice, so the profile reads
    as shown, yet the customer is owed the answer the first handling gave, notice included."""
    async with services.reading() as view:
        events = await view.accounts.recent_events(account_id, 10)
    for newer, older in itertools.pairwise(events):
        if newer.event == "login" and newer.telegram_user_id == user_id:
            return (
                older.event == "privacy_notice_shown"
                and older.telegram_user_id == user_id
                and older.detail == f"version {current_version(services)}"
            )
    return False


async def show_new_notice(services: Services, user_id: int, account: AccountView) -> bool:
    """The notice, once, to a logged-in customer starting a self-service form: its own unit of work.
    Handled again after a crash, the step answers as the first handling did: that one recorded the
    notice (so the profile now reads as shown) and showed it."""
    async with services.uow(deferred=True) as uow:
        if await uow.applied_before():
            return True
        shown = await record_notice_shown(uow, services, user_id, account)
        if shown:
            await uow.commit()
    return shown
