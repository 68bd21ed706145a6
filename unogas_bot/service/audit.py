"""The audit events of the use cases: one call shape, inside the use case's unit of work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unogas_bot.domain import AccountView

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork


async def audit(
    uow: UnitOfWork, event: str, account: AccountView | None, user_id: int, detail: str = ""
) -> None:
    """Record `event` by Telegram user `user_id` about `account` (when known). `detail` is short free text
    for the support staff and never holds a secret."""
    await uow.accounts.add_event(
        event,
        account_id=account.id if account else None,
        customer_code=account.customer_code if account else None,
        telegram_user_id=user_id,
        detail=detail,
    )
