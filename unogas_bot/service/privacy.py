"""The privacy notice (GDPR art. 13): which version a profile acknowledged, and when it must be shown again.

The short notice's text is in the catalogues (`privacy_notice`), the full one at `PRIVACY_NOTICE_URL`; the
version (`PRIVACY_NOTICE_VERSION`) names what the customer was shown. A registration stores the version
acknowledged before any personal data was asked; when the operator publishes a new version, each
logged-in customer is shown it once and that is recorded, with the time, in the profile and the audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from unogas_bot.domain import AccountNotFound, AccountView
from unogas_bot.service.audit import audit

if TYPE_CHECKING:
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


async def acknowledge(services: Services, user_id: int, account: AccountView) -> bool:
    """Record that the current notice was shown to the logged-in customer; False if the profile is gone."""
    version = current_version(services)
    async with services.uow() as uow:
        try:
            await uow.profiles.acknowledge_privacy(account.id, version)
        except AccountNotFound:
            return False
        await audit(uow, "privacy_notice_shown", account, user_id, f"version {version}")
        await uow.commit()
    return True
