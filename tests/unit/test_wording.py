"""The wording fixed in issue 13 (section 4), kept from coming back: refusal texts suggest nothing the bot
refuses; Italian in the formal "Lei" with the seed's sentence verbatim; English in English."""

from __future__ import annotations

import re

import pytest

from unogas_bot import rules
from unogas_bot.i18n import texts

SEED_SENTENCE = "Le informazioni relative al proprio profilo sono state correttamente salvate."
QUOTED = re.compile(r"[«“\"]([^»”\"]+)[»”\"]")


def _catalogue(lang: str) -> dict[str, str]:
    return {key: str(value) for key, value in texts.load()[lang].items()}


@pytest.mark.parametrize("lang", ["it", "en"])
def test_no_password_refusal_suggests_a_password_the_bot_refuses(lang: str) -> None:
    """The password examples the catalogue quotes, counted first (none would make the check prove
    nothing): a refusal may only suggest a password the bot accepts; a question's example is a published
    one, which the bot refuses when it is copied."""
    about_passwords = {key: text for key, text in _catalogue(lang).items() if "password" in key}
    assert any(key.startswith("e_password.") for key in about_passwords)
    examples = [(key, example) for key, text in about_passwords.items() for example in QUOTED.findall(text)]
    assert examples, f"no quoted password example in the {lang} catalogue: nothing would be checked"
    for key, example in examples:
        if key.startswith("e_password."):
            try:
                rules.password.validate(example)
            except rules.Invalid as refused:
                pytest.fail(f"{key} suggests {example!r}, which the bot refuses ({refused.reason})")
        else:
            assert rules.password.is_common(example), (
                f"{key}: {example!r} is not among the published examples"
            )
    for key, text in about_passwords.items():
        if key.startswith("e_password."):
            for published in rules.password.PUBLISHED_PASSWORDS:
                assert published not in text, key


def test_italian_wording() -> None:
    it = _catalogue("it")
    assert it["welcome"].startswith("Le diamo il benvenuto")
    assert "E-mail o password non valide." in it["login_invalid"]
    assert "deve averne almeno {min}" in it["e_customer_code.too_short"]
    assert not [key for key, text in it.items() if "non torna" in text]
    assert not [key for key, text in it.items() if re.search(r"\bmin\.?(\s|$)", text)]
    assert "{command}" in it["expired"]
    assert it["saved"].startswith(SEED_SENTENCE)


def test_english_wording() -> None:
    en = _catalogue("en")
    assert en["login_invalid"].startswith("Incorrect e-mail or password.")
    assert not [key for key, text in en.items() if "«" in text or "»" in text]
    assert "You'll find it on" in en["q_customer_code"]
    assert not [key for key, text in en.items() if re.search(r"\bsign(ing)? (you )?up\b", text, re.I)]
    assert not [key for key, text in en.items() if re.search(r"\bmin\.?(\s|$)", text)]
    assert "{command}" in en["expired"]
    assert SEED_SENTENCE not in en["saved"] and en["saved"].startswith(
        "Your profile information has been saved."
    )
