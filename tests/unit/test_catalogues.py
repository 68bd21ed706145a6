"""The gettext catalogues (unogas_bot/i18n/locales/*/LC_MESSAGES/unogas.po) against the code that uses them.

Translators edit the .po files in their own tools, which know nothing of our keys or placeholders: these
checks are what stops a missing message, a renamed `{placeholder}` or a stale entry from reaching a user.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from unogas_bot.i18n import texts

ROOT = Path(__file__).resolve().parents[2]
# The code whose keys count as uses; the catalogue module itself and the tests do not.
CODE = [ROOT / "unogas_bot", ROOT / "conversations", ROOT / "storage"]
HTML_TAG = re.compile(r"</?[a-z]+[^>]*>")


@cache
def parsed(lang: str) -> Catalog:
    """The .po file of `lang` as Babel reads it; a syntax error fails here."""
    with texts.po_file(lang).open("rb") as source:
        return read_po(source, locale=lang, domain=texts.DOMAIN, abort_invalid=True)


def messages(lang: str) -> dict[str, str]:
    """Key -> text of one catalogue, the header left out."""
    return {m.id: m.string for m in parsed(lang) if m.id}


@cache
def reasons() -> frozenset[str]:
    """Every rule's error reason: from `unogas_bot.rules`, or `validation` where the rules used to be."""
    for name in ("unogas_bot.rules", "unogas_bot.validation"):
        try:
            return importlib.import_module(name).REASONS
        except (ImportError, AttributeError):
            continue
    raise AssertionError("no module lists the rules' REASONS")


# --- the files themselves ------------------------------------------------------------------------------


def test_there_is_one_catalogue_per_language_and_no_other():
    found = {path.parent.parent.name for path in texts.LOCALES.glob(f"*/LC_MESSAGES/{texts.DOMAIN}.po")}
    assert found == set(texts.LANGUAGES)


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_catalogue_parses_cleanly_with_babel(lang: str):
    catalog = parsed(lang)
    assert str(catalog.locale) == lang
    assert not catalog.fuzzy, "the header is marked fuzzy"
    assert [m.id for m in catalog if m.id and m.fuzzy] == [], "fuzzy entries are not used: review them"
    assert [m.id for m in catalog if m.id and not isinstance(m.id, str)] == [], "plural forms are not used"
    assert [m.id for m in catalog if m.context] == [], "msgctxt is not used: the key is the context"
    assert list(catalog.obsolete) == [], "drop the obsolete #~ entries"


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_no_key_is_defined_twice(lang: str):
    # Babel silently keeps the first of two equal msgids, so count them in the text.
    ids = re.findall(r'^msgid "(.+)"$', texts.po_file(lang).read_text(encoding="utf-8"), re.MULTILINE)
    assert [key for key, n in Counter(ids).items() if n > 1] == []
    assert set(ids) == set(messages(lang))


# --- both languages alike --------------------------------------------------------------------------------


def test_both_languages_have_the_same_keys():
    assert set(messages("it")) == set(messages("en"))


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_every_message_is_translated(lang: str):
    assert [key for key, text in messages(lang).items() if not text.strip()] == []


def test_both_languages_have_the_same_placeholders_and_html_tags():
    italian, english = messages("it"), messages("en")
    for key in italian.keys() & english.keys():
        assert texts.placeholders(italian[key]) == texts.placeholders(english[key]), key
        tags = Counter(HTML_TAG.findall(italian[key]))
        assert tags == Counter(HTML_TAG.findall(english[key])), key


# --- the loader -------------------------------------------------------------------------------------------


def test_loader_serves_exactly_the_files():
    assert texts.load() == {lang: messages(lang) for lang in texts.LANGUAGES}


@pytest.mark.parametrize("lang", texts.LANGUAGES)
def test_first_text_of_a_process_is_in_the_language_asked(lang: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(texts, "_tables", {})  # as before the first `t()`
    monkeypatch.setattr(texts, "_default", {})
    assert texts.t(lang, "cancelled") == messages(lang)["cancelled"]


def test_unknown_language_falls_back_to_italian_and_unknown_key_fails():
    assert texts.t("de", "progress", step=1, total=3) == messages("it")["progress"].format(step=1, total=3)
    with pytest.raises(KeyError):
        texts.t("it", "no_such_message")


# --- the catalogue against the code ----------------------------------------------------------------------


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes: a key named in prose is not a use."""
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def pieces(node: ast.AST) -> list[str | None] | None:
    """The pieces of a string the code puts together, None for each computed one: f"q_{stem}_repeat" and
    "q_" + stem + "_repeat" are both ["q_", None, "_repeat"]. None when `node` builds no string."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.Constant) else None for v in node.values]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = pieces(node.left), pieces(node.right)
        return None if left is None or right is None else left + right
    return [None]


Template = tuple[str | None, ...]


def key_template(node: ast.AST) -> Template | None:
    """The pieces of a built string that can be a key: a computed piece and a letter or digit in the fixed
    text ("q_" + stem), or two computed pieces and nothing else (text_prefix + key). Looser shapes (a
    lone "_" between computed pieces, many pieces joined) would match nearly any key."""
    parts = pieces(node) if isinstance(node, ast.JoinedStr | ast.BinOp) else None
    if not parts or None not in parts:
        return None
    template = tuple(part for part in parts if part != "")
    fixed = "".join(part for part in template if part)
    if any(c.isalnum() for c in fixed) or template == (None, None):
        return template
    return None


def fillings(template: Template, text: str) -> Iterator[list[str]]:
    """Every way `text` fits `template`: the values of its computed pieces, one list per way."""
    if not template:
        if not text:
            yield []
        return
    head, rest = template[0], template[1:]
    if head is not None:
        if text.startswith(head):
            yield from fillings(rest, text[len(head) :])
        return
    for cut in range(1, len(text) + 1):
        for tail in fillings(rest, text[cut:]):
            yield [text[:cut], *tail]


@cache
def code_strings() -> tuple[frozenset[str], frozenset[Template]]:
    """The string literals in the code (not docstrings), and the templates of the strings it builds."""
    literals: set[str] = set()
    templates: set[Template] = set()
    for folder in CODE:
        for path in folder.rglob("*.py"):
            if texts.LOCALES.parent in path.parents:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            prose = docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
                    literals.add(node.value)
                elif (template := key_template(node)) is not None:
                    templates.add(template)
    return frozenset(literals), frozenset(templates)


@cache
def is_used(key: str, depth: int = 3) -> bool:
    """A key is used when the code spells it out, or builds it from values it knows: "e_" + a rule's
    reason, "kind_" + "person", "q_" + "tax_code_" + "person", f"{key}_mismatch" for the key "answer",
    "q_" + text_prefix + key for "login_" and "email"."""
    literals, templates = code_strings()
    if key in literals or key in reasons():
        return True
    if depth == 0:
        return False
    # A template fits only a key that holds each of its fixed pieces: the others need no trying.
    fitting = [template for template in templates if all(part in key for part in template if part)]
    return any(
        all(is_used(value, depth - 1) for value in values)
        for template in fitting
        for values in fillings(template, key)
    )


def test_no_message_is_unused():
    assert [key for key in messages("it") if not is_used(key)] == []


def test_every_rule_reason_has_a_message():
    assert sorted(r for r in reasons() if f"e_{r}" not in messages("it")) == []


def test_every_key_the_code_spells_with_a_catalogue_prefix_exists():
    # A literal that looks like a key but is in no catalogue would fail only when said. Only the families
    # no other name in the code starts with (login_… is also an audit event, for one).
    literals, _ = code_strings()
    keyish = re.compile(r"^(btn|q|h|label|ph|cmd|kind|e)_[a-z0-9_.]+$")
    assert sorted(s for s in literals if keyish.match(s) and s not in messages("it")) == []
