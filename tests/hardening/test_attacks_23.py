"""Attacks on issue 23's paths (one domain, every entry through a use case, the settings split), each kept
as a test that failed on the refactored code first.

* DATABASE_URL with a port that is no number ("postgresql://bot@db:PORT/unogas", a template left unfilled):
  the check moved out of SQLAlchemy into config.py and let it through, so `config check` and every command
  died with a traceback when the engine parsed it; one line naming the setting again.
"""

from __future__ import annotations

import pytest

from unogas_bot.cli.checks import all_problems
from unogas_bot.config import ConfigError, Settings

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
