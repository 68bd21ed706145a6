"""The fast paths of the validation rules give exactly what the full rules give.

Registry imports validate every row of files of a million rows, so the common shapes of a value (a bare
upper-case codice fiscale, a plain Latin name) are recognised by one regular expression and returned at
once. A fast path that accepted something the full rules refuse, or normalised it differently, would let a
bad row into the registry: these properties compare the two on generated text biased towards the edges.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from stdnum.it import codicefiscale

from unogas_bot import rules

# Characters near the fast paths' borders: ASCII, Latin-1 letters and signs, typographic quotes, other
# scripts, combining marks, digits of other scripts and odd spaces.
EDGE = "aZ09 -'/.,&()+\"\t\u00a0\u00b4\u00ab\u00bb\u00d7\u00f7\u00c0\u00ff\u2019\u0301\u0660\u4e2d\u0416_#"
edgy_text = st.text(alphabet=st.sampled_from(EDGE) | st.characters(), max_size=40)


def outcome(rule, text: str, *args: str) -> object:  # type: ignore[no-untyped-def]
    """What a rule returns, or the reason it refuses the text."""
    try:
        return rule(text, *args)
    except rules.Invalid as exc:
        return ("invalid", exc.reason)


@settings(max_examples=400, deadline=None)
@given(edgy_text)
@example("UG-100234")
@example("ug/1")
@example("ABCD")
def test_customer_code_fast_path_agrees(text: str) -> None:
    assert outcome(rules.customer_code.validate, text) == outcome(rules.customer_code._rules, text)


@settings(max_examples=400, deadline=None)
@given(edgy_text)
@example("D'Angelo")
@example("Nicolò")
@example("A'")
@example("De  Luca")
def test_person_name_fast_path_agrees(text: str) -> None:
    assert outcome(rules.names.person_name, text) == outcome(rules.names._person_name_rules, text)


@settings(max_examples=400, deadline=None)
@given(edgy_text)
@example("Idrotermica Ferraro S.r.l.")
@example('Bar "Sport" & C.')
@example("123")
@example("Caffè «Roma»")
@example("Bar\u00a0Sport")
def test_company_name_fast_path_agrees(text: str) -> None:
    assert outcome(rules.names.company_name, text) == outcome(rules.names._company_name_rules, text)


CF_CHARS = "ABCDEHLMPRSTXYZ0123456789LMNPQRSTUV"


@st.composite
def codice_fiscale_like(draw: st.DrawFn) -> str:
    """Upper-case 16-character codes, often with a right check character, sometimes with a bad date."""
    body = draw(st.text(alphabet=st.sampled_from(CF_CHARS), min_size=15, max_size=15))
    right = codicefiscale.calc_check_digit(body)
    check = draw(st.sampled_from([right, right, "A", "Z"]))
    return body + check


@pytest.mark.parametrize("kind", ["person", "business"])
@settings(max_examples=300, deadline=None)
@given(code=codice_fiscale_like() | edgy_text)
def test_tax_code_fast_path_agrees(kind: str, code: str) -> None:
    # The full rules are the same function entered with the text made not to match the fast path.
    assert outcome(rules.tax_code.validate, code, kind) == outcome(rules.tax_code.validate, " " + code, kind)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))  # the path under test: ASCII
@example("Panificio Rossi S.r.l.")
@example("Bar & C. 2000")
def test_company_key_ascii_path_agrees(text: str) -> None:
    folded = "".join(ch for ch in rules.text.fold(text) if ch.isalnum())
    assert rules.text.squeeze(text) == folded
