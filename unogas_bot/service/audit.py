"""The audit trail's one writer: every event a use case records goes through `audit`, inside the use
case's unit of work, so it commits with the change it describes or not at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unogas_bot.domain import AccountView

if TYPE_CHECKING:
    from storage.unit_of_work import UnitOfWork


async def audit(
    uow: UnitOfWork,
    event: str,
    account: AccountView | None,
    user_id: int | None = None,
    detail: str = "",
    *,
    account_id: int | None = None,
    customer_code: str | None = None,
) -> None:
    """Record `event` by Telegram user `user_id` (None: support staff or the bot itself) about `account`,
    or, when there is no account at hand, about profile `account_id` / customer `customer_code`. `detail`
    is short free text for the support staff and never holds a secret."""
    if account is not None:
        account_id, customer_code = account.id, account.customer_code
    await uow.accounts.add_event(
        event,
        account_id=account_id,
        customer_code=customer_code,
        telegram_user_id=user_id,
        detail=detail,
    )
