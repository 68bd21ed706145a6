"""Attacks on issue 23's paths (one domain, every entry through a use case, the settings split), each kept
as a test that failed on the refactored code first.

* DATABASE_URL with a port that is no number ("postgresql://bot@db:PORT/unogas", a template left unfilled):
  the check moved out of SQLAlchemy into config.py and let it through, so `config check` and every command
  died with a traceback when the engine parsed it; one line naming the setting again.
* One e-mail normalisation, but two spellings of one address: a customer who registered "mario@bücher.de"
  logs in as "mario@xn--bcher-kva.de" (the form's rule reads the ASCII form of the domain), yet support's
  `accounts show` with that address, or with a full-width "＠" (the "@" was looked for before the address
  was normalised), found no account. The domain's `normalize_email` reads an IDNA label as the form does.
"""

from __future__ import annotations

import pytest

from tests.kit.accountkit import login, registered
from tests.kit.botkit import Bot, texts_of
from unogas_bot.cli.checks import all_problems
from unogas_bot.config import ConfigError, Settings
from unogas_bot.domain import normalize_email
from unogas_bot.service.support import Support

# What SQLAlchemy refuses when it makes the engine (its URL parser raises ValueError on these).
UNPARSABLE_URLS = [
    "postgresql://bot@db:PORT/unogas",
    "postgres://bot:secret@db:5432x/unogas?sslmode=require",
    "postgresql://bot@[::1/unogas",
    "postgresql://bot:secret@db:/unogas",
]


@pytest.mark.parametrize("url", UNPARSABLE_URLS)
async def test_a_database_url_sqlalchemy_cannot_parse_is_one_line_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL must be a database URL") as refused:
        Settings.from_env({"DATABASE_URL": url})
    assert "secret" not in str(refused.value)
    (problem,) = await all_problems({"DATABASE_URL": url}, network=False)
    assert "DATABASE_URL" in str(problem) and "secret" not in str(problem)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:p#ss:w?rd@db:5432/unogas",  # a password with what a URL parser would split at
        "postgresql://bot@[::1]:5432/unogas",
        "postgresql://bot@db/unogas",
        "sqlite+aiosqlite:///unogas.db",
    ],
)
def test_the_urls_sqlalchemy_reads_stay_accepted(url: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).database_url.split("://")[1] == url.split("://")[1]


IDN_EMAIL = "mario.rossi@bücher.de"
IDN_SPELLINGS = [
    "mario.rossi@xn--bcher-kva.de",  # the domain as a mail client or a DNS tool shows it
    "Mario.Rossi@XN--BCHER-KVA.DE",
    "ｍａｒｉｏ．ｒｏｓｓｉ＠ｂüｃｈｅｒ．ｄｅ",  # full width, "＠" included
]


async def test_support_finds_the_account_by_every_spelling_the_login_accepts(sqlite_bot: Bot) -> None:
    user = await registered(sqlite_bot, email=IDN_EMAIL)
    support = Support(sqlite_bot.services.db, clock=sqlite_bot.services.clock)
    for spelling in IDN_SPELLINGS:
        assert "Accesso effettuato" in " ".join(texts_of(await login(user, spelling))), spelling
        await user.send("/esci")
        found = await support.find(spelling)
        assert found is not None and found.email == IDN_EMAIL, spelling
        assert normalize_email(spelling) == IDN_EMAIL
