"""Attacks on issue 21's paths that broke them, each kept as a test (the adversarial pass after the merge).

* A security question that is the password typed another way (a phone capitalises the first letter, a
  question mark added, all lower-case) is the password to anyone who reads it: refused like an exact copy,
  minutes later and after a restart too.
* A registry correction of a customer's printed code ("UG-100234 -> UG1-00234", `customers import
  --correct`) is audited under the profile with both codes in its detail: the erasure left them there,
  linking the profile's number to the customer again. Nothing names the code once the profile is erased.
* A password typed at the registration's customer-code question ("Lanterna verde 1987" is a valid-looking
  code once spaces go) was stored in the audit trail as "LANTERNAVERDE1987", and its plain SHA-256 in the
  attempts: what was typed as a code reaches no table unless it is a registry customer's code.
* The password as a command's argument ("/accedi mario.rossi@example.it Lanterna verde 1987", the way some
  people log in elsewhere) stayed in the chat: commands were never looked at. Its arguments are.
* An address whose "i" carries a combining dot above (invisible: "mari̇o.rossi@example.it") is a second
  login ID that looks like a customer's own: refused like a Cyrillic "а".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from storage.customer_csv import HEADER, import_file
from storage.operator import acting_operator
from tests.conftest import FakeClock, make_test_database
from tests.kit.accountkit import MARIO_EMAIL, login, registered
from tests.kit.botkit import (
    GIULIA,
    MARIO,
    PASSWORD,
    TEST_SETTINGS,
    Bot,
    answer_all,
    running_bot,
    texts_of,
)
from tests.kit.hardkit import check_accounts, dump_database
from tests.kit.stores import stores
from unogas_bot.offline import Deleted, Sent, SimUser
from unogas_bot.service import limits

CHIARA = {"code": "UG-100237", "first": "Chiara", "last": "Lombardo", "tax": "LMBCHR92E51A944T"}
# Either refusal will do: the secret guard's (a draft holds the password) or the question's own.
REFUSED = ("non può essere la sua password", "cancellato il suo ultimo messaggio")
# The password as a customer types it again at the question: a phone's keyboard lower-cases or capitalises
# the first letter, a question mark closes a question, a space more or less, everything lower-case.
RETYPED = [
    "lanterna verde 1987",
    "LANTERNA VERDE 1987",
    "Lanterna verde 1987?",
    "Lanterna  verde 1987 ",
    "La mia password è Lanterna verde 1987?",  # inside the question: it shows the password just the same
]


async def registration_at_the_question(user: SimUser) -> None:
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", MARIO_EMAIL)
    await answer_all(user, PASSWORD, PASSWORD)


async def refused_as_the_question(bot: Bot, user: SimUser, text: str) -> None:
    before = len(bot.api.events)
    events = await user.send(text)
    assert any(word in said for said in texts_of(events) for word in REFUSED), texts_of(events)
    after = bot.api.events[before:]
    assert user.last_message_id in {e.message_id for e in after if isinstance(e, Deleted)}
    await bot.app.update_persistence()  # the state after this step too, not only the last write-back's
    rows = await dump_database(bot.services.db)
    assert not [f"{t}.{c}" for t, c, value in rows if "anterna" in value.lower()]


@pytest.mark.parametrize("retyped", RETYPED)
async def test_the_password_retyped_as_the_question_is_refused_in_change_question(
    sqlite_bot: Bot, clock: FakeClock, retyped: str
) -> None:
    user = await registered(sqlite_bot)
    await login(user)
    await answer_all(user, "/cambia_domanda", PASSWORD)
    clock.advance(minutes=5)  # past the 2 minutes: only the draft's own digests can tell
    await refused_as_the_question(sqlite_bot, user, retyped)


@pytest.mark.parametrize("retyped", RETYPED)
async def test_the_password_retyped_as_the_question_is_refused_at_registration(
    sqlite_bot: Bot, clock: FakeClock, retyped: str
) -> None:
    user = sqlite_bot.user()
    await registration_at_the_question(user)
    clock.advance(minutes=5)
    await refused_as_the_question(sqlite_bot, user, retyped)


async def test_a_question_that_cannot_be_checked_for_lack_of_bcrypt_budget_is_deleted_anyway(
    tmp_path: Path, clock: FakeClock
) -> None:
    """After a restart the question is compared with the password's bcrypt hash; a customer out of bcrypt
    budget is asked to wait, and the message, which may be the password, does not stay in the chat."""
    async with make_test_database("sqlite", tmp_path) as db:
        async with running_bot(db, clock) as bot:
            await registration_at_the_question(bot.user())
        tight = dataclasses.replace(
            TEST_SETTINGS, limits=dataclasses.replace(TEST_SETTINGS.limits, hash_budget_per_user=1)
        )
        async with running_bot(db, clock, settings=tight, demo=False) as bot:
            user = bot.user()
            before = len(bot.api.events)
            await user.send("lanterna verde 1987")
            after = bot.api.events[before:]
            assert any("attenda" in e.plain_text.lower() for e in after if isinstance(e, Sent)), after
            assert user.last_message_id in {e.message_id for e in after if isinstance(e, Deleted)}
            rows = await dump_database(db)
            assert not [f"{t}.{c}" for t, c, value in rows if "anterna" in value.lower()]


async def test_after_a_restart_the_capitalised_password_is_refused_as_the_question(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A restarted bot compares the question with the password's bcrypt hash: the phone's capital first
    letter (the likeliest way the same password comes back) is tried too."""
    async with make_test_database("sqlite", tmp_path) as db:
        async with running_bot(db, clock) as bot:
            await registration_at_the_question(bot.user())
        async with running_bot(db, clock, demo=False) as bot:
            await refused_as_the_question(bot, bot.user(), "lanterna verde 1987")


# --- look-alike addresses -------------------------------------------------------------------------------


async def test_an_address_with_an_invisible_dot_on_its_i_is_no_second_login_id(bot: Bot) -> None:
    """ "mari̇o.rossi@example.it" (an "i" with a combining dot above: it shows as "mario.rossi") is refused
    at registration and at /cambia_email beside Mario's real address."""
    look_alike = "mari\u0307o.rossi@example.it"
    await registered(bot)  # Mario, with mario.rossi@example.it
    giulia = bot.user(1002)
    await answer_all(giulia, "/registrati", "continua", GIULIA["code"])
    await giulia.press("Persona")
    await answer_all(giulia, GIULIA["first"], GIULIA["last"], GIULIA["tax"], "salta")
    events = await giulia.send(look_alike)
    assert any("alfabeti diversi" in said for said in texts_of(events)), texts_of(events)

    chiara = await registered(bot, user_id=1003, customer=CHIARA, email="chiara@example.it")
    await login(chiara, email="chiara@example.it")
    events = await answer_all(chiara, "/cambia_email", PASSWORD, look_alike)
    assert any("alfabeti diversi" in said for said in texts_of(events)), texts_of(events)
    stored = {account.email for account in await check_accounts(bot.services)}
    assert stored == {MARIO_EMAIL, "chiara@example.it"}


# --- erasure after a registry correction ---------------------------------------------------------------


async def test_erasure_leaves_no_customer_code_in_a_registry_correction(bot: Bot, tmp_path: Path) -> None:
    user = await registered(bot)
    await login(user)
    path = tmp_path / "corrected.csv"
    path.write_text(",".join(HEADER) + f"\nUG1-00234,person,Mario,Rossi,,{MARIO['tax']}\n", encoding="utf-8")
    with acting_operator("anna"):
        await import_file(path, stores(bot.services).registry, corrections=True)
    before = [v for t, _c, v in await dump_database(bot.services.db) if t == "audit_events"]
    assert any("UG1-00234" in value for value in before), "the correction is audited with the codes"

    await answer_all(user, "/cancella_profilo", PASSWORD)
    events = await user.press("Cancella il profilo")
    assert any("cancellat" in said for said in texts_of(events)), texts_of(events)
    rows = await dump_database(bot.services.db)
    left = [
        f"{column}={value}"
        for table, column, value in rows
        if table == "audit_events" and "00234" in value.replace("-", "").replace("/", "")
    ]
    assert not left, left
    assert any(t == "audit_events" and v == "registry_corrected" for t, _c, v in rows), "the event stays"


# --- a slip in a group --------------------------------------------------------------------------------------


async def test_the_password_sent_to_a_group_right_after_logging_in_is_deleted_there(
    sqlite_bot: Bot,
) -> None:
    """The customer logs in, then types the password again in a group the bot is in (the wrong chat, a
    reply to the bot's message there): it is deleted in the group (where the bot may) and the customer is
    told in the private chat, never in the group; any other message in the group is left alone."""
    user = await registered(sqlite_bot)
    await login(user)
    sqlite_bot.api.admin_chats.add(-500)  # a group where the bot may delete others' messages
    group = sqlite_bot.sim.user(1001, chat_id=-500, chat_type="group")
    before = len(sqlite_bot.api.events)
    await group.send(PASSWORD)
    slipped = group.last_message_id
    after = sqlite_bot.api.events[before:]
    assert (-500, slipped) in {(e.chat_id, e.message_id) for e in after if isinstance(e, Deleted)}
    private = [e.plain_text for e in after if isinstance(e, Sent) and e.chat_id == 1001]
    assert any("gruppo" in text for text in private), private
    assert not [e for e in after if isinstance(e, Sent) and e.chat_id == -500 and "assword" in e.plain_text]

    before = len(sqlite_bot.api.events)
    await group.send("Buongiorno a tutti")
    assert not [e for e in sqlite_bot.api.events[before:] if isinstance(e, Deleted)]

    # Where the bot may not delete, the customer is still told, privately, to delete it.
    elsewhere = sqlite_bot.sim.user(1001, chat_id=-600, chat_type="group")
    before = len(sqlite_bot.api.events)
    await elsewhere.send(PASSWORD)
    private = [
        e.plain_text for e in sqlite_bot.api.events[before:] if isinstance(e, Sent) and e.chat_id == 1001
    ]
    assert any("lo cancelli lei" in text for text in private), private


# --- a password typed as the customer code ----------------------------------------------------------------


async def test_a_password_typed_as_the_customer_code_reaches_no_table(bot: Bot, clock: FakeClock) -> None:
    await registered(bot)
    clock.advance(minutes=5)  # no slip any more: the bot cannot tell it is a password
    other = bot.user(1002)
    await answer_all(other, "/registrati", "continua", PASSWORD)
    await other.press("Persona")
    events = await answer_all(other, MARIO["first"], MARIO["last"], MARIO["tax"], "salta")
    assert any("non corrispondono" in said for said in texts_of(events))
    # The conversation's state as it stands now, not as the last periodic write-back left it.
    await bot.app.update_persistence()
    rows = await dump_database(bot.services.db)
    typed = {"LANTERNAVERDE1987", limits.customer_key(PASSWORD).split(":", 1)[1].upper()}
    assert not [f"{t}.{c}={v}" for t, c, v in rows if any(form in v.upper() for form in typed)]
    # The failure is still audited (as a code outside the registry), and still counted for that code:
    # whoever types it again meets the same limit as for a registered customer's code.
    audited = [v for t, c, v in rows if t == "audit_events" and c == "event"]
    assert "registration_identity_failed" in audited


# --- the password as a command's argument ------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [f"/accedi {MARIO_EMAIL} {PASSWORD}", f"/start {PASSWORD}", f"/cambia_password {PASSWORD.lower()}"],
)
async def test_the_password_as_a_commands_argument_is_deleted(sqlite_bot: Bot, command: str) -> None:
    user = await registered(sqlite_bot)
    await login(user)
    before = len(sqlite_bot.api.events)
    await user.send(command)
    after = sqlite_bot.api.events[before:]
    assert user.last_message_id in {e.message_id for e in after if isinstance(e, Deleted)}
    assert any("cancellato il suo ultimo messaggio" in e.plain_text for e in after if isinstance(e, Sent))


async def test_commands_without_a_secret_are_left_alone(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot)
    await login(user)
    for command in ("/start registrati", "/profilo", "/aiuto per favore"):
        before = len(sqlite_bot.api.events)
        await user.send(command)
        assert not [e for e in sqlite_bot.api.events[before:] if isinstance(e, Deleted)], command
