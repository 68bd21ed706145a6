"""Injection and odd data: SQL-looking text, markup, the longest values, 4,096-character messages,
invisible characters and homoglyph e-mail addresses.

Whatever a customer typed and the bot echoes (the summary, the profile, error messages quoting characters)
must reach Telegram as valid HTML (the stand-in refuses malformed markup and texts over 4,096 characters
as Telegram does) and read exactly as typed; SQL-looking text is data, never SQL.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select, text

from storage.models import Account, Customer
from tests.kit.botkit import GIULIA, MARIO, Bot, answer_all, register_person
from tests.kit.hardkit import ErrorSpy, check_accounts
from tests.kit.stores import stores
from unogas_bot import rules
from unogas_bot.bench import data as bench_data
from unogas_bot.domain import CustomerRecord
from unogas_bot.offline import MAX_MESSAGE_LENGTH, SimUser

PASSWORD = "Ombrello giallo 314"
ANSWER = "Zucchero filato"
SQL = "'; DROP TABLE accounts; --"
SQL_QUESTION = "Robert'); DROP TABLE customers; -- come si chiamava?"
MARKUP_QUESTION = "<b>Chi</b> era </i> il mio &amp; *_[`preferito`]? <a href='x'>"
# 4,096 distinct characters: an error message quoting every one of them would be far too long.
DISTINCT_4096 = "".join(chr(0x4E00 + i) for i in range(MAX_MESSAGE_LENGTH))


def shown(user: SimUser) -> list[str]:
    return [s.plain_text for s in user.replies]


def no_refused_calls(bot: Bot) -> None:
    """Telegram (the stand-in) accepted every message: no malformed HTML, nothing too long."""
    assert not bot.api.errors, bot.api.errors[:1]


async def to_the_question(
    user: SimUser, customer: dict[str, str] = MARIO, email: str = "o'reilly@example.it"
):
    await answer_all(user, "/registrati", "continua", customer["code"])
    await user.press("Persona")
    await answer_all(
        user, customer["first"], customer["last"], customer["tax"], "salta", email, PASSWORD, PASSWORD
    )


async def test_sql_looking_text_is_only_data(bot: Bot) -> None:
    spy = ErrorSpy(bot.app)
    stray = bot.user(6001)
    for reply in ("/registrati", "continua", SQL, "UG-100234", "persona", SQL, "Robert'); --"):
        await stray.send(reply)  # refused where it breaks a rule, and the refusal quotes it safely
    await answer_all(stray, "/annulla", "/accedi", SQL, "robert@example.it", SQL, "/annulla")
    await answer_all(stray, "/recupera_password", "x@example.it", SQL, "/annulla")

    user = bot.user(6002)
    await to_the_question(user)
    await answer_all(user, SQL_QUESTION, ANSWER, ANSWER)
    summary = shown(user)[-1]
    assert SQL_QUESTION in summary and "o'reilly@example.it" in summary
    await user.press("Salva")
    await answer_all(user, "/accedi", "O'Reilly@example.it", PASSWORD)
    await user.send("/profilo")
    assert SQL_QUESTION in shown(user)[-1]

    assert not spy.errors
    no_refused_calls(bot)
    async with bot.services.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Customer))).scalar_one() == 6
        stored = (await session.execute(select(Account.security_question, Account.email))).one()
        assert tuple(stored) == (SQL_QUESTION, "o'reilly@example.it")
        await session.execute(text("SELECT 1 FROM accounts"))  # the table is still there


async def test_markup_typed_by_a_customer_is_shown_literally(sqlite_bot: Bot) -> None:
    bot = sqlite_bot
    spy = ErrorSpy(bot.app)
    user = bot.user(6101)
    await answer_all(user, "/registrati", "continua", "<b>UG</b>")
    refused = shown(user)[-2]
    assert "caratteri non ammessi" in refused and "<>" not in refused, "no error quotes what was typed"
    await answer_all(user, "UG-100234")
    await user.press("Persona")
    await user.send("</i>Mario")
    assert "caratteri non ammessi" in shown(user)[-2] and "</>" not in shown(user)[-2]
    await answer_all(user, "Mario", "Rossi &amp; *_[", "Rossi", MARIO["tax"], "salta", "mario@example.it")
    await answer_all(user, PASSWORD, PASSWORD, MARKUP_QUESTION, ANSWER, ANSWER)
    assert MARKUP_QUESTION in shown(user)[-1]
    await user.press("Salva")
    await answer_all(user, "/accedi", "mario@example.it", PASSWORD, "/profilo")
    assert MARKUP_QUESTION in shown(user)[-1]
    assert not spy.errors
    no_refused_calls(bot)


async def test_longest_company_name_and_4096_character_messages(sqlite_bot: Bot) -> None:
    bot = sqlite_bot
    spy = ErrorSpy(bot.app)
    company = ('"Rossi & Figli" l\'Officina (A+B) Impianti/Gas, S.n.c. ' * 3)[:119] + "x"
    assert rules.names.company_name(company) == company and len(company) == rules.names.COMPANY_MAX
    vat = bench_data.vat_number(random.Random(3))
    await stores(bot.services).registry.upsert_many(
        [CustomerRecord("UG-777001", "business", None, None, company, vat)]
    )
    huge = "ò" * MAX_MESSAGE_LENGTH
    user = bot.user(6201)
    await user.send("/registrati")
    await user.send("continua")
    for reply in (huge, DISTINCT_4096, "UG-777001"):
        await user.send(reply)
    await user.press("Azienda")
    for reply in (huge, DISTINCT_4096, company, huge, DISTINCT_4096, vat, huge, DISTINCT_4096, "salta"):
        await user.send(reply)
    # (a wrong repetition would start the pair again: the repetitions are typed right)
    for reply in (huge, DISTINCT_4096, "ufficio@officina.example.it", huge, PASSWORD, PASSWORD):
        await user.send(reply)
    for reply in (huge, DISTINCT_4096, "Dove abbiamo aperto la prima sede?", huge, ANSWER, ANSWER):
        await user.send(reply)
    summary = shown(user)[-1]
    assert company in summary
    await user.send(huge)  # at the summary: asked to press Salva
    await user.press("Salva")
    assert "correttamente salvate" in shown(user)[-1]
    for reply in ("/accedi", huge, DISTINCT_4096, "ufficio@officina.example.it", huge, PASSWORD, "/profilo"):
        await user.send(reply)
    assert company in shown(user)[-1]
    await answer_all(user, "/esci", "/recupera_password", huge, "ufficio@officina.example.it", huge)
    await answer_all(user, DISTINCT_4096, "UG-777001", huge, DISTINCT_4096, "/annulla")
    assert all(0 < len(t) <= MAX_MESSAGE_LENGTH for t in shown(user))
    assert not any(DISTINCT_4096[:4] in t for t in shown(user)), "an error message quotes what was typed"
    assert not spy.errors
    no_refused_calls(bot)
    await check_accounts(bot.services)


async def test_invisible_characters_in_the_security_question_are_refused(bot: Bot) -> None:
    """A question is stored and shown back: NUL (which PostgreSQL cannot store in text) and other
    invisible characters are refused with a message, not discovered when saving."""
    spy = ErrorSpy(bot.app)
    user = bot.user(6301)
    await to_the_question(user, email="mario@example.it")
    for question in ("Come si chiama\x00 il gatto?", "Come si chiama\u200b il gatto?", "Come\x07 si chiama?"):
        await user.send(question)
        assert "invisibili" in shown(user)[-2]
    await answer_all(user, "Come si chiama il gatto?", ANSWER, ANSWER)
    await user.press("Salva")
    assert "correttamente salvate" in shown(user)[-1]
    assert not spy.errors


async def test_look_alike_addresses_are_refused_or_are_the_address_they_imitate(bot: Bot) -> None:
    """An address with a Cyrillic "а" is refused with a reply that says why (it would be a second login ID
    that looks like a customer's own); a full-width one is NFKC-normalised into the address it shows, so it
    is that address: in use at registration, Mario's at login."""
    latin = "mario.rossi@example.it"
    cyrillic, full_width = "m\u0430rio.rossi@example.it", "\uff4d\uff41\uff52\uff49\uff4f.rossi@example.it"
    mario, giulia = bot.user(6401), bot.user(6402)
    await register_person(mario, MARIO, email=latin, password=PASSWORD)
    await answer_all(giulia, "/registrati", "continua", GIULIA["code"])
    await giulia.press("Persona")
    await answer_all(giulia, GIULIA["first"], GIULIA["last"], GIULIA["tax"], "salta")
    asked = shown(giulia)[-1]
    await giulia.send(cyrillic)
    assert "alfabeti diversi" in shown(giulia)[-2] and shown(giulia)[-1] == asked
    await giulia.send(full_width)
    assert "già usato" in " ".join(shown(giulia)[-2:])
    accounts = {a.email for a in await check_accounts(bot.services)}
    assert accounts == {latin}, "no look-alike was stored beside the real address"

    outsider = bot.user(6403)
    await answer_all(outsider, "/accedi", full_width, PASSWORD)
    assert "Accesso effettuato" in shown(outsider)[-1] or "Accesso effettuato" in shown(outsider)[-2]
    no_refused_calls(bot)


@pytest.mark.parametrize(
    "email", ["mario\u200b@example.it", "mario@exa\u202emple.it", "<b>@example.it", "mario@example.it\x00"]
)
async def test_invisible_or_markup_characters_make_an_email_invalid(sqlite_bot: Bot, email: str) -> None:
    user = sqlite_bot.user(6501)
    await answer_all(user, "/registrati", "continua", MARIO["code"])
    await user.press("Persona")
    await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"], "salta")
    asked = shown(user)[-1]
    await user.send(email)
    assert shown(user)[-1] == asked, "the address was refused and asked again"
    no_refused_calls(sqlite_bot)
