"""Registration through the real Application, offline: what the bot says and what ends up stored."""

from __future__ import annotations

import bcrypt
import pytest

from storage.demo import DEMO_CUSTOMERS
from tests.kit.botkit import (
    ANSWER,
    FERRARO,
    GIULIA,
    MARIO,
    PASSWORD,
    QUESTION,
    SEED_SENTENCE,
    answer_all,
    last_text,
    register_person,
    texts_of,
)
from tests.kit.stores import stores
from unogas_bot.offline import Deleted


async def _at_email(user, customer=MARIO):
    """Answer the identity questions correctly, up to the e-mail question."""
    await user.send("/registrati")
    await user.send("continua")
    await user.send(customer["code"])
    await user.press("Persona")
    await answer_all(user, customer["first"], customer["last"], customer["tax"])
    return await user.send("salta")


async def test_person_registers_and_profile_is_stored(bot):
    user = bot.user(1001)
    events = await register_person(user)
    assert SEED_SENTENCE in last_text(events)
    assert "mario.rossi@example.it" in last_text(events)

    account = await stores(bot.services).accounts.get_by_email("mario.rossi@example.it")
    assert account is not None
    assert account.customer_code == "UG-100234"
    assert account.phone == "+393471234567"
    assert account.security_question == QUESTION
    assert account.registered_by == 1001
    assert bcrypt.checkpw(PASSWORD.encode(), account.password_hash.encode())
    # The answer is hashed after normalising case, accents and spaces.
    assert bcrypt.checkpw(b"briciola bianca", account.answer_hash.encode())
    assert not bot.app.user_data[1001].get("registration"), "the draft is forgotten after saving"


async def test_business_registers_with_partita_iva_and_loose_company_spelling(bot):
    user = bot.user(2002)
    await user.send("/registrati")
    await user.send("continua")
    await user.send("ug-200101")
    events = await user.press("Azienda")
    assert "ragione sociale" in last_text(events)
    events = await user.send("IDROTERMICA FERRARO SRL")
    assert "partita IVA" in last_text(events)
    await user.send("028 4739 0586")
    events = await user.send("salta")
    assert "corrispondono" in texts_of(events)[0]
    await answer_all(user, "info@ferraro.it", "Caldaie e tubi 1978", "Caldaie e tubi 1978", QUESTION, ANSWER)
    events = await user.send(ANSWER)
    summary = last_text(events)
    assert "IDROTERMICA FERRARO SRL" in summary
    assert "Telefono: non indicato" in summary
    assert "Nome:" not in summary
    events = await user.send("salva")
    assert SEED_SENTENCE in last_text(events)
    account = await stores(bot.services).accounts.get_by_email("info@ferraro.it")
    assert account is not None and account.customer_code == FERRARO["code"] and account.phone is None


async def test_progress_counts_person_and_business_steps(sqlite_bot):
    person, business = sqlite_bot.user(1), sqlite_bot.user(2)
    await person.send("/registrati")
    await person.send("continua")
    await person.send(MARIO["code"])
    events = await person.press("Persona")
    assert "Passo 3 di 12" in last_text(events)
    await business.send("/registrati")
    await business.send("continua")
    await business.send(FERRARO["code"])
    events = await business.press("Azienda")
    assert "Passo 3 di 11" in last_text(events)


@pytest.mark.parametrize(
    ("answers", "bad", "error_fragment", "question_fragment"),
    [
        ([], "UG 10@234", "caratteri non ammessi: usi solo", "codice cliente"),
        ([], "AB", "troppo corto", "codice cliente"),
        (["UG-100234", "persona"], "Mari0", "non contiene numeri", "nome"),
        (
            ["UG-100234", "persona", "Mario", "Rossi"],
            "RSSMRA75C12H501X",
            "ultimo carattere",
            "codice fiscale",
        ),
        (["UG-100234", "persona", "Mario", "Rossi"], "02847390586", "partita IVA", "codice fiscale"),
        (
            ["UG-100234", "persona", "Mario", "Rossi", "RSSMRA75C12H501H"],
            "12",
            "numero di telefono valido",
            "telefono",
        ),
        (["UG-100234", "azienda"], "!!!", "ragione sociale", "ragione sociale"),
        (["UG-100234"], "forse", "«persona» o «azienda»", "persona"),
    ],
)
async def test_invalid_identity_reply_is_explained_and_asked_again(
    sqlite_bot, answers, bad, error_fragment, question_fragment
):
    user = sqlite_bot.user(3003)
    await user.send("/registrati")
    before = await user.send("continua")
    for reply in answers:
        before = await user.send(reply)
    step_before = last_text(before)
    events = await user.send(bad)
    said = texts_of(events)
    assert len(said) == 2, said
    assert error_fragment in said[0]
    assert question_fragment in said[1].lower() or question_fragment in said[1]
    assert said[1] == step_before, "the same question, with the same progress, is asked again"


async def test_invalid_login_data_is_explained_and_asked_again(sqlite_bot):
    user = sqlite_bot.user(3004)
    await _at_email(user)
    events = await user.send("mario.rossi(at)example.it")
    assert "chiocciola" in texts_of(events)[0]
    assert "indirizzo e-mail" in last_text(events)
    await user.send("mario.rossi@example.it")
    for bad, fragment in [
        ("corta", "troppo corta"),
        ("password123", "tra le più usate"),
        ("Rossi e il mare!", "suoi dati"),
        ("🔥" * 20, "emoji"),
    ]:
        events = await user.send(bad)
        said = texts_of(events)
        assert fragment in said[0], (bad, said)
        assert "Scelga una password" in said[1]
        assert any(isinstance(e, Deleted) for e in events), "a password message is deleted even when rejected"
    events = await answer_all(user, PASSWORD, PASSWORD)
    assert "domanda di sicurezza" in last_text(events)
    events = await user.send("Dove?")
    assert "troppo corta" in texts_of(events)[0]
    await user.send("Qual è la città di mia nonna Briciola?")
    events = await user.send("briciola")
    assert "non deve comparire nella domanda" in texts_of(events)[0]


async def test_password_mismatch_asks_both_again(sqlite_bot):
    user = sqlite_bot.user(3005)
    await _at_email(user)
    await answer_all(user, "mario.rossi@example.it", PASSWORD)
    events = await user.send(PASSWORD + "!")
    said = texts_of(events)
    assert "non coincidono" in said[0]
    assert "Scelga una password" in said[1]
    events = await answer_all(user, "Un'altra frase lunga", "Un'altra frase lunga")
    assert "domanda di sicurezza" in last_text(events)


async def test_answer_mismatch_asks_answer_again_and_compares_normalised(sqlite_bot):
    user = sqlite_bot.user(3006)
    await _at_email(user)
    await answer_all(user, "mario.rossi@example.it", PASSWORD, PASSWORD, QUESTION, ANSWER)
    events = await user.send("Briciola Nera")
    said = texts_of(events)
    assert "Le due risposte non coincidono" in said[0]
    assert "risposta" in said[1]
    await user.send("Bríciola  Bianca")
    events = await user.send("  briciola bianca ")
    assert "riepilogo" in last_text(events)


async def test_mismatch_restarts_from_customer_code_without_saying_which_field(bot):
    user = bot.user(4004)
    await user.send("/registrati")
    await user.send("continua")
    await user.send(MARIO["code"])
    await user.press("Persona")
    await answer_all(user, "Mario", "Verdi", MARIO["tax"])
    events = await user.send("salta")
    said = texts_of(events)
    assert "non corrispondono" in said[0]
    assert "cognome" not in said[0].lower()
    assert "Tentativi rimasti: 4" in said[0]
    assert "codice cliente" in said[1]
    # Second try with the right data, the code typed without its hyphen: the phone given for the identity
    # that did not match is asked again (issue 13), and the code is shown as printed on the bill.
    await user.send(MARIO["code"].replace("-", " "))
    await user.press("Persona")
    events = await answer_all(user, "mario", "ROSSI", MARIO["tax"])
    assert "telefono" in last_text(events)
    events = await user.send("salta")
    assert "corrispondono a quelli della bolletta" in texts_of(events)[0]
    assert "indirizzo e-mail" in last_text(events)
    assert bot.app.user_data[4004]["registration"]["customer_code"] == MARIO["code"]


async def test_identity_attempts_are_limited_per_hour(bot, clock):
    user = bot.user(4005)
    await user.send("/registrati")
    await user.send("continua")
    for _ in range(5):
        await user.send(MARIO["code"])
        await user.press("Persona")
        await answer_all(user, "Mario", "Sbagliato", MARIO["tax"])
        events = await user.send("salta")  # after a mismatch the phone is asked again (issue 13)
    assert "Troppi tentativi" in last_text(events)
    assert "registration" not in bot.app.user_data[4005]
    await user.send("/registrati")
    await user.send("continua")
    await user.send(MARIO["code"])
    await user.press("Persona")
    events = await answer_all(user, MARIO["first"], MARIO["last"], MARIO["tax"])
    events = await user.send("salta")
    assert "Troppi tentativi" in last_text(events), "still locked, even with the right data"
    clock.advance(minutes=61)
    await _at_email(user)
    events = await user.send("x@example.it")
    assert "password" in last_text(events)


async def test_already_registered_customer_is_pointed_to_login(bot):
    await register_person(bot.user(5001))
    other = bot.user(5002)
    await other.send("/registrati")
    await other.send("continua")
    await other.send(MARIO["code"])
    await other.press("Persona")
    await answer_all(other, MARIO["first"], MARIO["last"], MARIO["tax"])
    events = await other.send("salta")
    text = last_text(events)
    assert "ha già un profilo" in text and "/accedi" in text and "/recupera_password" in text
    assert "mario.rossi@example.it" not in text
    assert await stores(bot.services).accounts.count() == 1


async def test_email_already_taken_is_asked_again(bot):
    await register_person(bot.user(6001), email="famiglia@example.it")
    other = bot.user(6002)
    await _at_email(other, GIULIA)
    events = await other.send("FAMIGLIA@Example.it")
    said = texts_of(events)
    assert "già usato" in said[0]
    assert "indirizzo e-mail" in said[1]
    events = await other.send("giulia@example.it")
    assert "password" in last_text(events)


async def test_cancel_forgets_the_draft(sqlite_bot):
    user = sqlite_bot.user(7001)
    await _at_email(user)
    events = await user.send("/annulla")
    assert "annullata" in last_text(events)
    assert "registration" not in sqlite_bot.app.user_data[7001]
    events = await user.send("mario@example.it")
    assert "benvenuto" in last_text(events), "outside a flow free text gets the welcome"


async def test_help_explains_current_question_and_asks_it_again(sqlite_bot):
    user = sqlite_bot.user(7002)
    await user.send("/registrati")
    await user.send("continua")
    question = last_text(await user.send("UG-100234"))
    events = await user.send("/aiuto")
    said = texts_of(events)
    assert "«Persona»" in said[0]
    assert said[1] == question


async def test_stickers_photos_and_unknown_commands_get_the_question_again(sqlite_bot):
    user = sqlite_bot.user(7003)
    await user.send("/registrati")
    await user.send("continua")
    question = last_text(await user.send("UG-100234"))
    for events in (await user.send_sticker(), await user.send_photo(), await user.send("/boh")):
        said = texts_of(events)
        assert said[-1] == question
        assert len(said) == 2


async def test_too_many_invalid_replies_offers_to_start_over(sqlite_bot):
    user = sqlite_bot.user(7004)
    await user.send("/registrati")
    await user.send("continua")
    for _ in range(4):
        events = await user.send("@@")
    assert "difficoltà" not in " ".join(texts_of(events))
    events = await user.send("@@")
    assert any("difficoltà" in t for t in texts_of(events))
    events = await user.press("Ricomincia")
    assert "Continua" in last_text(events), "starting over shows the privacy notice again"
    assert "Passo 1 di 12" in last_text(await user.press("Continua"))


async def test_silence_forgets_the_draft_and_says_so(sqlite_bot, clock):
    user = sqlite_bot.user(7005)
    await _at_email(user)
    clock.advance(minutes=16)
    events = await user.send("mario.rossi@example.it")
    assert "inattività" in last_text(events)
    assert "registration" not in sqlite_bot.app.user_data[7005]
    await user.send("/registrati")
    assert "Passo 1 di 12" in last_text(await user.press("Continua"))


async def test_back_goes_to_previous_question(sqlite_bot):
    user = sqlite_bot.user(7006)
    await user.send("/registrati")
    await user.send("continua")
    await user.send("UG-100234")
    await user.press("Persona")
    events = await user.send("/indietro")
    assert "persona" in last_text(events).lower() and "Passo 2" in last_text(events)
    events = await user.send("/indietro")
    assert "Passo 1" in last_text(events)
    events = await user.send("/indietro")
    assert "prima domanda" in texts_of(events)[0]


async def test_edit_from_summary_returns_to_summary(sqlite_bot):
    user = sqlite_bot.user(7007)
    await register_person(user, save=False)
    events = await user.press("Modifica: E-mail")
    assert "indirizzo e-mail" in last_text(events)
    events = await user.send("nuovo@example.it")
    assert "riepilogo" in last_text(events) and "nuovo@example.it" in last_text(events)
    events = await user.press("Modifica: Codice cliente")
    events = await user.send("UG-100234")
    assert "corrispondono" in texts_of(events)[0], "changing the customer code repeats the verification"
    assert "riepilogo" in last_text(events)
    events = await user.press("Salva")
    assert SEED_SENTENCE in last_text(events)


async def test_old_buttons_are_answered_not_acted_upon(sqlite_bot):
    user = sqlite_bot.user(7008)
    await user.send("/registrati")
    await user.send("continua")
    await user.send("UG-100234")
    kind_question = sqlite_bot.api.messages_to(user.chat_id)[-1]
    await user.press("Persona")
    events = await user.press_in(kind_question.message_id, f"registration|{0}|business")
    assert not texts_of(events)
    assert any(getattr(e, "text", None) == "Questo pulsante non è più attivo." for e in events)
    assert sqlite_bot.app.user_data[7008]["registration"]["kind"] == "person"


async def test_secrets_never_reach_the_database_or_logs(tmp_path, clock, caplog):
    import logging

    import sqlalchemy as sa

    from tests.conftest import make_test_database
    from tests.kit.botkit import running_bot

    caplog.set_level(logging.DEBUG)
    async with make_test_database("sqlite", tmp_path) as db, running_bot(db, clock) as bot:
        await register_person(bot.user(8001))
        async with db.session() as session:
            tables = (
                await session.execute(sa.text("SELECT name FROM sqlite_master WHERE type='table'"))
            ).all()
            dump = []
            for (table,) in tables:
                for row in (await session.execute(sa.text(f'SELECT * FROM "{table}"'))).all():
                    dump.append(" ".join(str(v) for v in row))
        stored = "\n".join(dump)
        assert "UG-100234" in stored, "the scan sees the data"
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*"))
    logs = caplog.text
    for secret in (PASSWORD, ANSWER, ANSWER.lower(), PASSWORD.lower()):
        assert secret not in stored
        assert secret.encode() not in raw
        assert secret not in logs


async def test_demo_customers_are_all_valid_and_matchable(sqlite_bot):
    from storage.registry import CustomerRecord

    for record in DEMO_CUSTOMERS:
        identity = CustomerRecord(**{k: getattr(record, k) for k in CustomerRecord.__dataclass_fields__})
        assert await stores(sqlite_bot.services).registry.match(identity) == record


async def test_customer_removed_before_save_is_told_not_stuck(sqlite_bot):
    import sqlalchemy as sa

    user = sqlite_bot.user(8101)
    await register_person(user, save=False)
    async with sqlite_bot.services.db.transaction() as session:
        await session.execute(sa.text("DELETE FROM customers WHERE customer_code = 'UG-100234'"))
    events = await user.press("Salva")
    assert "non risulta più tra i nostri clienti" in last_text(events)
    assert "registration" not in sqlite_bot.app.user_data[8101]
    assert await stores(sqlite_bot.services).accounts.count() == 0


async def test_forged_summary_action_changes_nothing(sqlite_bot):
    user = sqlite_bot.user(8102)
    await register_person(user, save=False)
    draft = sqlite_bot.app.user_data[8102]["registration"]
    summary = sqlite_bot.api.messages_to(user.chat_id)[-1]
    events = await user.press_in(summary.message_id, f"registration|{draft['_n']}|explode")
    assert "Prema «Salva»" in texts_of(events)[0]
    assert "registration" in sqlite_bot.app.user_data[8102]
    events = await user.send("salva")
    assert SEED_SENTENCE in last_text(events)


async def test_editing_an_old_message_does_not_answer_the_question(sqlite_bot):
    user = sqlite_bot.user(8103)
    await user.send("/registrati")
    await user.send("continua")
    await user.send("UG-100234")
    first_message = user.last_message_id
    await user.press("Persona")
    events = await user.edit(first_message, "Giuseppe")
    assert not texts_of(events)
    assert "first_name" not in sqlite_bot.app.user_data[8103]["registration"]
