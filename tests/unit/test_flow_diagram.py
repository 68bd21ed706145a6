"""The flow diagrams are generated from the form specs (issue 13): every question, branch, secret pair,
checkpoint, summary and exit is in them, and the support page's registration diagram is the generated one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conversations.registration import SPEC as REGISTRATION
from unogas_bot.flows.diagram import all_diagrams, forms, mermaid

SUPPORT_PAGE = Path(__file__).resolve().parents[2] / "docs" / "support.md"


def test_the_support_page_shows_the_generated_registration_diagram() -> None:
    page = SUPPORT_PAGE.read_text("utf-8")
    shown = re.search(r"<!-- flows diagram registration it[^>]*-->\n```mermaid\n(.*?)```", page, re.S)
    assert shown is not None, "docs/support.md's registration diagram"
    assert shown.group(1) == mermaid(forms()["registration"], "it"), (
        "docs/support.md's diagram drifted from the code: paste `unogas-bot flows diagram registration` there"
    )


@pytest.mark.parametrize("lang", ["it", "en"])
def test_every_step_branch_pair_and_exit_of_the_registration_is_drawn(lang: str) -> None:
    drawing = mermaid(forms()["registration"], lang)
    for step in REGISTRATION.steps:
        assert f"s_{step.key}" in drawing
    person, business = ("Persona", "Azienda") if lang == "it" else ("Person", "Business")
    assert (
        f"s_kind -->|{person}| s_first_name" in drawing
        and f"s_kind -->|{business}| s_company_name" in drawing
    )
    assert "s_password_repeat -.->|" in drawing and "s_answer_repeat -.->|" in drawing  # the repetitions
    assert "c_verified -->|" in drawing and "x_already_registered" in drawing and "locked" in drawing
    assert "summary -->|" in drawing and drawing.count("summary -.->|") == sum(
        s.in_summary for s in REGISTRATION.steps
    )
    assert "any -.->|" in drawing  # cancel and timeout, from any question


def test_every_form_has_a_diagram_with_a_node_per_step() -> None:
    for name, drawing in all_diagrams("en").items():
        assert drawing.startswith("flowchart TD\n"), name
        for step in forms()[name].spec.steps:
            assert f"s_{step.key}" in drawing, (name, step.key)


def test_the_dot_drawing_has_every_node_and_edge_of_the_mermaid_one() -> None:
    """DOT is derived from the Mermaid text: the same nodes and the same edges, dashed where Mermaid's are."""
    import re

    from unogas_bot.flows.diagram import dot, forms, mermaid

    for form in forms().values():
        for lang in ("it", "en"):
            chart, graph = mermaid(form, lang), dot(form, lang)
            edges = re.findall(r"^\s+(\w+) -\.?->", chart, flags=re.M)
            assert len(re.findall(r"^\s+\w+ -> \w+", graph, flags=re.M)) == len(edges)
            assert graph.count("style=dashed") == chart.count("-.->")
            nodes = {m for m in re.findall(r"^\s+(\w+)[\[({]", chart, flags=re.M)}
            assert nodes == set(re.findall(r"^\s+(\w+) \[shape=", graph, flags=re.M))


def test_svg_and_png_are_drawn_by_graphviz() -> None:
    import shutil

    import pytest

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed here (scripts/_env.sh installs it where it can)")
    from unogas_bot.flows.diagram import forms, render

    svg = render(forms()["registration"], "it", "svg")
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"codice cliente" in svg
    assert render(forms()["login"], "en", "png").startswith(b"\x89PNG")
