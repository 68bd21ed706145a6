"""The audit trail of the account conversations: one call shape for every event a turn records."""

from __future__ import annotations

from conversations.form import Turn
from storage.accounts import AccountView


async def audit(turn: Turn, event: str, account: AccountView | None = None, detail: str = "") -> None:
    """Record `event` for the Telegram user of `turn` and, when known, the account it concerns.

    ``detail`` is short free text for the support staff and must never contain a secret.
    """
    await turn.services.accounts.record_event(
        event,
        account_id=account.id if account else None,
        customer_code=account.customer_code if account else None,
        telegram_user_id=turn.user_id,
        detail=detail,
    )
