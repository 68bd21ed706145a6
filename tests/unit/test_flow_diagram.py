"""The flow diagrams are generated from the form specs and the paths their hooks decide (issues 13, 22):
every question, branch, secret pair, checkpoint, refusal with its limit, and end is in them, each end on
its own; the labels wrap at words; the summary's edits are one edge; a legend; and the documentation's
registration diagram is the generated one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conversations.specs.registration import SPEC as REGISTRATION
from unogas_bot.flows.diagram import LABEL_MAX, WRAP, all_diagrams, dot, graph, mermaid, specs
from unogas_bot.flows.paths import PATHS, Exit
from unogas_bot.flows.samples import plain, sample_html

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "docs" / "support.md"


def test_the_documentation_shows_the_generated_registration_diagram() -> None:
    shown = re.search(
        r"<!-- flows diagram registration it[^>]*-->\n```mermaid\n(.*?)```", SUPPORT.read_text("utf-8"), re.S
    )
    assert shown is not None, "docs/support.md's registration diagram"
    assert shown.group(1) == mermaid(specs()["registration"], "it"), (
        "the diagram drifted from the code: paste `unogas-bot flows diagram registration` "
        "into docs/support.md"
    )


@pytest.mark.parametrize("lang", ["it", "en"])
def test_every_step_branch_pair_and_exit_of_the_registration_is_drawn(lang: str) -> None:
    drawing = mermaid(specs()["registration"], lang)
    for step in REGISTRATION.steps:
        assert f"s_{step.key}" in drawing
    person, business = ("Persona", "Azienda") if lang == "it" else ("Person", "Business")
    assert (
        f"s_kind -->|{person}| s_first_name" in drawing
        and f"s_kind -->|{business}| s_company_name" in drawing
    )
    assert "s_password_repeat -.->|" in drawing and "s_answer_repeat -.->|" in drawing  # the repetitions
    limit = "al 5° errore" if lang == "it" else "at failure 5"
    assert (
        f"c_verified -.->|{'non corrispondono' if lang == 'it' else 'no match'}, {limit}| s_customer_code"
        in drawing
    )
    assert (
        f"c_verified -.->|{limit}| x_verify_locked" in drawing
        and "c_verified -.-> x_already_registered" in drawing
    )
    assert (
        f"s_email -.->|{'e-mail già in uso' if lang == 'it' else 'e-mail in use'}, {limit}| s_email"
        in drawing
    )
    assert "summary -->|" in drawing and "x_saved" in drawing and "x_cancelled" in drawing
    # The eleven edit buttons: one bundled edge.
    assert drawing.count("summary -.->|") == 2  # the edit edge, and the e-mail taken meanwhile
    assert "any -.->|" in drawing  # cancel and timeout, from any question


def test_the_failure_paths_and_their_limits_are_drawn() -> None:
    login = mermaid(specs()["login"], "it")
    assert "s_password -.->|password errata, al 5° errore| s_password" in login
    assert (
        "s_password -.->|al 5° errore| x_login_wait" in login
        and "start -.->|al 10° errore| x_login_wait" in login
    )
    assert "s_password --> x_login_ok" in login
    recovery = mermaid(specs()["recovery"], "en")
    assert "s_answer -.->|wrong answer, at failure 3| s_answer" in recovery
    assert "s_answer -.->|at failure 3| x_rec_locked" in recovery
    for name in ("change_password", "change_email", "change_phone", "change_question", "export", "erase"):
        drawing = mermaid(specs()[name], "it")
        assert "s_current -.->|password errata, al 5° errore| s_current" in drawing, name
        assert "s_current -.->|al 5° errore| x_login_wait" in drawing, name


def test_each_end_has_its_own_node() -> None:
    erase = graph(specs()["erase"], "it")
    assert ("s_confirm", "x_erased", "Cancella il profilo") in {
        (e.source, e.target, e.label) for e in erase.edges
    }
    assert ("s_confirm", "x_cancelled", "Annulla") in {(e.source, e.target, e.label) for e in erase.edges}
    phone = graph(specs()["change_phone"], "en")
    assert {e.target for e in phone.edges if e.source == "s_phone"} >= {"x_phone_changed", "x_phone_removed"}
    for spec in specs().values():
        drawn = graph(spec, "it")
        assert "done" not in drawn.nodes, spec.name  # no shared anonymous end any more
        assert any(n.shape == "success" for n in drawn.nodes.values()), spec.name


def test_every_reply_a_form_ends_with_is_an_end_of_its_diagram() -> None:
    """The paths table (flows/paths.py) against the forms' code: a new Finish([...]) needs its exit."""
    helpers = {
        "_wait": "login_wait",
        "_locked": "rec_locked",
        "_too_many": "rec_too_many",
        "_gone": "own_data_not_logged_in",
    }
    modules = {"registration": ["registration"], "login": ["login"], "recovery": ["recovery"]}
    modules["own_data"] = [
        "change_password",
        "change_email",
        "change_phone",
        "change_question",
        "export",
        "erase",
    ]
    for module, names in modules.items():
        source = (ROOT / "conversations" / f"{module}.py").read_text(encoding="utf-8")
        ended = set(re.findall(r'Finish\(\[Reply\("(\w+)"', source))
        ended |= {
            key
            for helper, key in helpers.items()
            if re.search(rf"Finish\(\[self\.{helper}\(|{helper}\(other\)", source)
        }
        drawn = {p.reply for name in names for p in PATHS[name] if isinstance(p, Exit)} | {"cancelled"}
        assert ended <= drawn, (module, ended - drawn)


def test_labels_wrap_at_words_and_are_never_cut_mid_word() -> None:
    for spec in specs().values():
        for lang in ("it", "en"):
            for node in graph(spec, lang).nodes.values():
                for line in node.lines:
                    assert len(line) <= WRAP or " " not in line, (spec.name, line)
                text = " ".join(node.lines).removesuffix(" …")
                assert len(text) <= LABEL_MAX + 2, (spec.name, text)
    # A long question ends at a word: every word shown is a whole word of the catalogue text.
    password = graph(specs()["registration"], "it").nodes["s_password"]
    full = plain(sample_html("it", "q_password")).split()
    shown = " ".join(password.lines).removesuffix(" …").split()
    assert shown == full[: len(shown)] and password.lines[-1].endswith("…")


def test_every_form_has_a_diagram_with_a_node_per_step() -> None:
    for name, drawing in all_diagrams("en").items():
        assert drawing.startswith("flowchart TD\n"), name
        for step in specs()[name].steps:
            assert f"s_{step.key}" in drawing, (name, step.key)


def test_the_dot_drawing_has_every_node_and_edge_and_a_legend() -> None:
    for spec in specs().values():
        for lang in ("it", "en"):
            model, text = graph(spec, lang), dot(spec, lang)
            for node in model.nodes:
                assert re.search(rf"^\s+{node} \[", text, re.M), (spec.name, node)
            for e in model.edges:
                assert re.search(rf"^\s+{e.source} -> {e.target}\b", text, re.M), (spec.name, e)
            assert "subgraph cluster_legend" in text and "k_lines" in text
            assert "style=invis, weight=0" in text  # the legend below the flow, not beside it
