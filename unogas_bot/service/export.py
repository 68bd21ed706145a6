"""The customer's copy of their data (GDPR art. 15 and 20): one document as JSON and as readable text.

The same function serves the chat (`/i_miei_dati`) and the support tools (`accounts export`), so both give
the same document. It holds everything stored about the profile (storage/profiles.py `Profiles.export`:
the profile, the customer record it was matched with, its Telegram sessions, attempts still counted, its
audit trail) and never a hash: those columns are never selected. Each export is audited, and the document
includes that event.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from unogas_bot.service.audit import audit

if TYPE_CHECKING:
    from unogas_bot.service.context import Services

FORMAT = "unogas-profile-export/1"


OTHER_ACCOUNT = "another Telegram account"
# The Telegram user ids the document holds, by part: the customer's own are shown, any other (someone who
# tried the profile, another phone's session) only as `other`.
_TELEGRAM_IDS = {
    "profile": ("registered_by", "owner_telegram_user_id"),
    "telegram_sessions": ("telegram_user_id",),
}
_TELEGRAM_IDS["audit_events"] = ("telegram_user_id",)


async def export_profile(
    services: Services, account_id: int, user_id: int | None, other: str = OTHER_ACCOUNT
) -> dict[str, Any] | None:
    """The document of the profile (None if it is gone); `user_id` is the Telegram user who asked, None
    for the support tools (the document is then the profile owner's). Other people's Telegram accounts
    are named only as `other` (the customer's language's "another Telegram account")."""
    async with services.uow() as uow:
        account = await uow.accounts.get(account_id)
        if account is None:
            return None
        if user_id is None:
            await audit(uow, "data_exported", None, detail="by support staff", account_id=account.id)
        else:
            await audit(uow, "data_exported", account, user_id)
        data = await uow.profiles.export(account_id)
        await uow.commit()
    if data is None:
        return None
    me = account.owner if user_id is None else user_id
    for part, keys in _TELEGRAM_IDS.items():
        records = data[part] if isinstance(data[part], list) else [data[part]]
        for record in records:
            for key in keys:
                if record.get(key) is not None and record[key] != me:
                    record[key] = other
    return {
        "format": FORMAT,
        "exported_at": services.clock().isoformat(),
        "privacy_notice": services.settings.privacy_notice_url,
        **data,
    }


def as_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def as_text(document: dict[str, Any], title: str) -> bytes:
    """The same document for people: one section per part, one `name: value` line per datum, each
    record of a list under its number. `title` is the heading in the customer's language."""
    lines = [title, "=" * len(title), ""]
    for section, value in document.items():
        if isinstance(value, dict):
            lines += [section, "-" * len(section), *_pairs(value), ""]
        elif isinstance(value, list):
            lines += [f"{section} ({len(value)})", "-" * len(section)]
            for number, record in enumerate(value, 1):
                lines.append(f"  #{number}")
                lines += ["  " + line for line in _pairs(record)]
            lines.append("")
        else:
            lines.append(f"{section}: {_shown(value)}")
    return "\n".join(lines).encode("utf-8")


def _pairs(record: dict[str, Any]) -> list[str]:
    return [f"  {key}: {_shown(value)}" for key, value in record.items()]


def _shown(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)
