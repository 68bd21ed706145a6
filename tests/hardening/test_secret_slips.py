"""No secret survives a slip (issue 21): the 13 ways a customer sends a password or a security answer where
it does not belong, through the real Application.

In each path the customer types a secret a second (or third) time, at a question that is no secret one,
right after a success, or as the security question itself. Then:

* the message is deleted from the chat;
* it is refused: never taken as the answer to an ordinary question, never stored (every table is searched);
* no message of the bot quotes it, or the characters it is made of (an error such as "caratteri non
  ammessi (Lantervd)" would).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.conftest import FakeClock
from tests.kit.accountkit import MARIO_EMAIL, NEW_PASSWORD, login, registered
from tests.kit.botkit import ANSWER, GIULIA, MARIO, PASSWORD, QUESTION, Bot, answer_all
from tests.kit.hardkit import dump_database, secret_variants
from unogas_bot.offline import Deleted, Sent, SimUser

NEW_ANSWER = "Gelsomino rosa"


@dataclass
class Slip:
    """What a path did: the customer, the slipped message's id and the secret it holds."""

    user: SimUser
    message_id: int
    secret: str
    events_before: int  # the stand-in's events before the slip


Path = Callable[[Bot, FakeClock], Awaitable[Slip]]


async def registration_at(user: SimUser, *, through: str) -> None:
    """A registration of Mario up to `through`: "password" (both typed) or "answer" (both typed)."""
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", MARIO_EMAIL)
    await answer_all(user, PASSWORD, PASSWORD)
    if through == "answer":
        await answer_all(user, QUESTION, ANSWER, ANSWER)


async def slip(user: SimUser, text: str) -> Slip:
    before = len(user.api.events)
    await user.send(text)
    assert user.last_message_id is not None
    return Slip(user, user.last_message_id, text, before)


async def logged_in(bot: Bot) -> SimUser:
    user = await registered(bot)
    await login(user)
    return user


# --- the 13 paths -----------------------------------------------------------------------------------------


async def registration_password_again_at_the_question(bot: Bot, clock: FakeClock) -> Slip:
    user = bot.user()
    await registration_at(user, through="password")
    return await slip(user, PASSWORD)  # a third copy, where the security question is asked


async def registration_answer_again_at_the_summary(bot: Bot, clock: FakeClock) -> Slip:
    user = bot.user()
    await registration_at(user, through="answer")
    return await slip(user, ANSWER)


async def registration_password_as_the_question_later(bot: Bot, clock: FakeClock) -> Slip:
    user = bot.user()
    await registration_at(user, through="password")
    clock.advance(minutes=5)  # long after the 2 minutes: the question itself must not be the password
    return await slip(user, PASSWORD)


async def login_password_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await registered(bot)
    await login(user)
    return await slip(user, PASSWORD)  # arrives after "Accesso effettuato"


async def login_password_at_the_next_email_question(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await user.send("/esci")
    await user.send("/accedi")
    return await slip(user, PASSWORD)  # typed where the e-mail is asked


async def recovery_new_password_again_after_the_end(bot: Bot, clock: FakeClock) -> Slip:
    user = await registered(bot)
    await answer_all(
        user, "/recupera_password", MARIO_EMAIL, MARIO["code"], ANSWER, NEW_PASSWORD, NEW_PASSWORD
    )
    return await slip(user, NEW_PASSWORD)


async def change_password_current_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/cambia_password", PASSWORD)
    return await slip(user, PASSWORD)  # where the new password is asked


async def change_email_current_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/cambia_email", PASSWORD)
    return await slip(user, PASSWORD)  # where the new e-mail is asked


async def change_phone_current_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/cambia_telefono", PASSWORD)
    return await slip(user, PASSWORD)  # where the phone is asked: "caratteri non ammessi (Lantervd)"


async def change_question_current_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/cambia_domanda", PASSWORD)
    return await slip(user, PASSWORD)  # where the new question is asked: it was stored as the question


async def change_question_password_as_the_question_later(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/cambia_domanda", PASSWORD)
    clock.advance(minutes=5)
    return await slip(user, PASSWORD)


async def export_current_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/i_miei_dati", PASSWORD)
    return await slip(user, PASSWORD)  # arrives after the files


async def erase_current_sent_twice(bot: Bot, clock: FakeClock) -> Slip:
    user = await logged_in(bot)
    await answer_all(user, "/cancella_profilo", PASSWORD)
    return await slip(user, PASSWORD)  # where the confirmation button is awaited


SLIPPED = "cancellato il suo ultimo messaggio"  # the bot's word that the message was deleted and not used
# Each path, and what the bot says when it refuses the secret there.
PATHS: list[tuple[Path, str]] = [
    (registration_password_again_at_the_question, SLIPPED),
    (registration_answer_again_at_the_summary, SLIPPED),
    (registration_password_as_the_question_later, SLIPPED),
    (login_password_sent_twice, SLIPPED),
    (login_password_at_the_next_email_question, SLIPPED),
    (recovery_new_password_again_after_the_end, SLIPPED),
    # A secret question takes a secret: there the current password is refused as the new one.
    (change_password_current_sent_twice, "diversa da quella attuale"),
    (change_email_current_sent_twice, SLIPPED),
    (change_phone_current_sent_twice, SLIPPED),
    (change_question_current_sent_twice, SLIPPED),
    (change_question_password_as_the_question_later, SLIPPED),
    (export_current_sent_twice, SLIPPED),
    (erase_current_sent_twice, SLIPPED),
]


def echo_of(secret: str) -> str:
    """The secret's characters as an error listing refused characters would quote them."""
    return "".join(dict.fromkeys(ch for ch in secret if not ch.isspace()))


@pytest.mark.parametrize(("path", "refusal"), PATHS, ids=[path.__name__ for path, _ in PATHS])
async def test_a_secret_that_slips_is_deleted_refused_and_never_echoed(
    sqlite_bot: Bot, clock: FakeClock, path: Path, refusal: str
) -> None:
    assert len(PATHS) == 13
    done = await path(sqlite_bot, clock)
    after = sqlite_bot.api.events[done.events_before :]
    chat = done.user.chat_id
    deleted = {e.message_id for e in after if isinstance(e, Deleted) and e.chat_id == chat}
    assert done.message_id in deleted, "the slipped secret stayed in the chat"

    replies = [e.plain_text for e in after if isinstance(e, Sent) and e.chat_id == chat]
    assert any(refusal in text for text in replies), replies  # refused, and the customer told why
    variants = secret_variants(done.secret)
    echo = echo_of(done.secret)[:6]
    quoted = [text for text in replies if echo in text or any(v in text for v in variants)]
    assert not quoted, quoted

    rows = await dump_database(sqlite_bot.services.db)
    stored = [f"{table}.{column}" for table, column, value in rows if any(v in value for v in variants)]
    assert not stored, f"the secret was stored in {stored}"


async def test_after_a_restart_the_password_is_still_refused_as_the_question(
    tmp_path, clock: FakeClock
) -> None:
    """The keyed digests die with the process: a restarted bot compares the question with the password's
    bcrypt hash instead (registration: the draft's; /cambia_domanda: the profile's)."""
    from tests.conftest import make_test_database
    from tests.kit.botkit import running_bot

    async with make_test_database("sqlite", tmp_path) as db:
        async with running_bot(db, clock) as bot:
            await registration_at(bot.user(), through="password")
            other = await registered(bot, user_id=1002, customer=GIULIA, email="giulia@example.it")
            await login(other, email="giulia@example.it")
            await answer_all(other, "/cambia_domanda", PASSWORD)
        async with running_bot(db, clock, demo=False) as bot:  # a new process: a new key
            for user_id in (1001, 1002):
                user = bot.user(user_id)
                done = await slip(user, PASSWORD)
                after = bot.api.events[done.events_before :]
                assert done.message_id in {e.message_id for e in after if isinstance(e, Deleted)}
                assert any(
                    "non può essere la sua password" in e.plain_text for e in after if isinstance(e, Sent)
                )
            rows = await dump_database(db)
            assert not [column for _table, column, value in rows if PASSWORD in value]


async def test_what_a_secret_question_refused_is_no_secret_later(sqlite_bot: Bot) -> None:
    """The e-mail typed by mistake where the password is asked is refused there (it holds the customer's
    data): typed again at the e-mail question it is an e-mail, not a slip."""
    user = sqlite_bot.user()
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta", MARIO_EMAIL)
    refused = await user.send(MARIO_EMAIL)  # at the password question: refused (it is personal), deleted
    assert any("dati" in e.plain_text for e in refused if isinstance(e, Sent))
    await user.send("/indietro")  # back to the e-mail
    events = await user.send(MARIO_EMAIL)
    shown = [e.plain_text for e in events if isinstance(e, Sent)]
    assert not any(SLIPPED in text for text in shown) and "password" in shown[-1].lower()
