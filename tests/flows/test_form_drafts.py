"""Drafts already in the persistence tables when a new version starts: one stored before drafts carried a
version goes on where it was; one this code cannot read counts as expired (the customer is told and
starts again), and nothing crashes."""

from __future__ import annotations

from typing import Any

from storage.db import Database
from storage.persistence import SqlPersistence
from tests.conftest import FakeClock
from tests.kit.botkit import MARIO, last_text, running_bot
from unogas_bot.i18n import texts
from unogas_bot.offline import Sent, render_text

USER = 1001
KEY = (USER, USER)


def plain(key: str, **params: Any) -> str:
    return render_text(texts.t("it", key, **params), "HTML")


def unversioned_draft(clock: FakeClock) -> dict[str, Any]:
    """A registration at the e-mail question, as the engine stored it before drafts had `_v`."""
    return {
        "_history": ["customer_code", "kind", "first_name", "last_name", "tax_code", "phone"],
        "_n": 7,
        "customer_code": MARIO["code"],
        "kind": "person",
        "first_name": MARIO["first"],
        "last_name": MARIO["last"],
        "tax_code": MARIO["tax"],
        "phone": None,
        "verified": True,
        "_rk": False,
        "_at": "email",
        "_touched": clock().isoformat(),
    }


async def stored_before_start(db: Database, draft: dict[str, Any], state: str) -> None:
    """What an earlier process left in the tables: the draft and PTB's state of the conversation."""
    persistence = SqlPersistence(db)
    await persistence.update_user_data(USER, {"registration": draft})
    await persistence.update_conversation("registration", KEY, state)
    assert await persistence.save()


async def test_a_draft_stored_before_versions_goes_on_where_it_was(
    database: Database, clock: FakeClock
) -> None:
    await stored_before_start(database, unversioned_draft(clock), "email")
    async with running_bot(database, clock) as bot:
        user = bot.user(USER)
        # Begun before the privacy notice existed: the notice comes now, then the registration goes on.
        assert plain("q_privacy") in last_text(await user.send("mario.rossi@example.it"))
        assert plain("q_password") in last_text(await user.press("Continua"))
        draft = bot.app.user_data[USER]["registration"]
        assert draft["_at"] == "password" and draft["first_name"] == MARIO["first"] and draft["_v"] == 1
        # Its history was read too: /indietro goes back over the answers given before the upgrade.
        assert plain("q_email") in last_text(await user.send("/indietro"))
        assert plain("q_phone") in last_text(await user.send("/indietro"))


async def test_a_draft_this_code_cannot_read_counts_as_expired(database: Database, clock: FakeClock) -> None:
    await stored_before_start(database, {**unversioned_draft(clock), "_v": 99}, "email")
    async with running_bot(database, clock) as bot:
        user = bot.user(USER)
        minutes = int(bot.services.settings.limits.conversation_timeout.total_seconds() // 60)
        expired = plain("expired", minutes=minutes, command="/registrati")
        assert expired in last_text(await user.send("mario.rossi@example.it"))
        assert "registration" not in bot.app.user_data.get(USER, {}), "the unreadable draft is gone"
        await user.send("/registrati")
        assert plain("q_customer_code") in last_text(await user.send("continua")), "a new one starts"


async def test_an_unreadable_draft_ends_at_any_next_message(database: Database, clock: FakeClock) -> None:
    await stored_before_start(database, {**unversioned_draft(clock), "_n": "seven"}, "email")
    async with running_bot(database, clock) as bot:
        user = bot.user(USER)
        # Another form's command reaches the registration first (it is in progress): it ends there...
        assert "inattività" in last_text(await user.send("/accedi"))
        # ... and does not hold the customer in it.
        assert plain("q_login_email") in last_text(await user.send("/accedi"))


async def test_starting_again_takes_away_the_reply_keyboard_the_old_draft_showed(
    database: Database, clock: FakeClock
) -> None:
    """The flag was in every draft but a new start never read it: the first message now takes the
    keyboard of the question left (the phone's share and skip buttons) away."""
    await stored_before_start(database, {**unversioned_draft(clock), "_at": "phone", "_rk": True}, "phone")
    async with running_bot(database, clock) as bot:
        user = bot.user(USER)
        first, *_ = [e for e in await user.send("/registrati") if isinstance(e, Sent)]
        assert first.reply_markup == {"remove_keyboard": True}
