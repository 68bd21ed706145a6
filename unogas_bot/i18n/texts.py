"""Everything the bot says, looked up by key in the gettext catalogues: Italian first, English for users
whose Telegram is in English.

The texts live in `locales/<lang>/LC_MESSAGES/unogas.po` (msgid = the key the code uses, msgstr = the
text) so that translators work in Poedit, Weblate or Crowdin instead of Python. Italian is the source
language. The catalogues are read with Babel once, at first use, into plain dicts: a lookup per reply
costs what a dict lookup costs, and no compiled `.mo` file has to be built or kept in step.

Messages are Telegram HTML. `t()` escapes every parameter, so text typed by a customer can be echoed back
without breaking the formatting. Register: formal "Lei", short sentences, one question per message.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from string import Formatter

LANGUAGES = ("it", "en")
DEFAULT_LANGUAGE = "it"
DOMAIN = "unogas"
LOCALES = Path(__file__).with_name("locales")

# Language -> key -> text, and the Italian table again for the fallback: empty until `load()` fills them
# at the first text needed. `t()` reads these two names and nothing else, as fast as the old dicts.
_tables: dict[str, dict[str, str]] = {}
_default: dict[str, str] = {}


def po_file(lang: str) -> Path:
    """Where the catalogue of `lang` lives (the path translators' tools open)."""
    return LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(lang: str) -> dict[str, str]:
    """The translated messages of one .po file, key -> text, in file order.

    An untranslated (empty) or fuzzy entry is left out, as gettext does, so `t()` falls back to Italian
    rather than showing an empty or unchecked text. A malformed file raises `PoFileError`.
    """
    # Imported here: Babel is needed once per process, not by every module that imports `texts`.
    from babel.messages.pofile import read_po

    with po_file(lang).open("rb") as source:
        catalog = read_po(source, locale=lang, domain=DOMAIN, abort_invalid=True)
    # Keys are interned like the string literals the callers pass, so a lookup matches them by identity.
    return {
        sys.intern(message.id): message.string
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


def load() -> dict[str, dict[str, str]]:
    """Read every language's catalogue once and keep it for the life of the process.

    Two threads arriving together may both read the files; they build equal tables and one of them is
    kept, which is cheaper than a lock on every `t()`.
    """
    global _tables, _default
    if not _tables:
        tables = {lang: read_catalogue(lang) for lang in LANGUAGES}
        _tables, _default = tables, tables[DEFAULT_LANGUAGE]
    return _tables


class Raw(str):
    """A parameter that is already HTML (built from catalogue texts) and must not be escaped again."""

    __slots__ = ()


def t(lang: str, key: str, **params: object) -> str:
    """The message `key` in `lang` (Italian when the language or the translation is missing), with
    HTML-escaped parameters. An unknown key raises `KeyError`: a typo must fail a test, not reach a user."""
    template = _tables.get(lang, _default).get(key) or _default.get(key) or _first_use(lang, key)
    if not params:
        return template
    safe = {k: v if isinstance(v, Raw) else html.escape(str(v), quote=False) for k, v in params.items()}
    return template.format(**safe)


def _first_use(lang: str, key: str) -> str:
    """`t()`'s slow path: load the catalogues if this is the first text, then look `key` up as `t()` does
    (a `KeyError` if no language has it)."""
    tables = load()
    return tables.get(lang, _default).get(key) or _default[key]


def placeholders(template: str) -> set[str]:
    """The `{names}` a template uses; a test checks both languages agree."""
    return {name for _, name, _, _ in Formatter().parse(template) if name}


def language_for(code: str | None) -> str:
    """Pick the catalogue language from a Telegram `language_code` (e.g. "en-GB"): Italian by default."""
    if code and code.lower().split("-")[0] == "en":
        return "en"
    return DEFAULT_LANGUAGE
