"""A picture of every flow, generated from its form spec (conversations/specs/) and the paths its hooks
decide (paths.py), never drawn by hand.

`graph()` builds one model per form and language; `mermaid()` and `dot()` draw it. Each question is a node
labelled with its text (wrapped, never cut mid-word); a field offering choices branches (the
person/business questions follow from the fields' `applies`); an optional question has a "skip" edge; a
secret typed twice has its repetition, with the way back when the two differ; a checkpoint (the identity
check) is a decision; every refusal the form's hooks make (a wrong password, a wrong answer, an address
in use) is a dashed edge back to its question, with the limit after which the form ends; every end has a
node of its own; the summary's edit buttons are one bundled edge. The exits every question has (/annulla,
the timeout) and a legend sit together below the flow, so the drawing stays one column wide.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field

from conversations.spec import Field, FormSpec, Repeat
from conversations.specs import SPECS
from unogas_bot.config import Settings
from unogas_bot.flows.paths import ANY_QUESTION, PATHS, START, SUMMARY, Exit, Retry
from unogas_bot.flows.samples import plain, sample_html
from unogas_bot.i18n import texts

# The words of the drawing that are not catalogue texts, per language.
WORDS = {
    "it": {
        "start": "inizio",
        "skip": "salta",
        "differ": "non coincidono",
        "ok": "dati corretti",
        "check": "controllo dei dati",
        "edit": "modifica: una delle {n} risposte, poi di nuovo il riepilogo",
        "any": "qualsiasi domanda",
        "timeout": "15 minuti di silenzio",
        "cancel": "/annulla",
        "limit": "al {n}° errore",
        "legend": "legenda",
        "l_flow": "risposta valida",
        "l_failure": "rifiutata: di nuovo",
        "l_edit": "dal riepilogo",
        "l_any": "da ogni domanda",
        "l_question": "domanda",
        "l_secret": "segreto (cancellato)",
        "l_end": "fine",
        "l_invalid": "una risposta non valida riceve il motivo e la stessa domanda",
    },
    "en": {
        "start": "start",
        "skip": "skip",
        "differ": "they differ",
        "ok": "details match",
        "check": "data check",
        "edit": "change: one of the {n} answers, then the summary again",
        "any": "any question",
        "timeout": "15 minutes of silence",
        "cancel": "/cancel",
        "limit": "at failure {n}",
        "legend": "legend",
        "l_flow": "valid answer",
        "l_failure": "refused: again",
        "l_edit": "from the summary",
        "l_any": "from any question",
        "l_question": "question",
        "l_secret": "secret (deleted)",
        "l_end": "end",
        "l_invalid": "an invalid answer gets the reason and the same question",
    },
}
# Short words for the replies that send a customer back, per language (else the reply's own text).
REFUSALS = {
    "it": {
        "mismatch": "non corrispondono",
        "rec_no_match": "non corrispondono",
        "email_taken": "e-mail già in uso",
        "save_conflict_email": "e-mail presa nel frattempo",
        "login_invalid": "password errata",
        "current_password_wrong": "password errata",
        "rec_wrong_answer": "risposta errata",
    },
    "en": {
        "mismatch": "no match",
        "rec_no_match": "no match",
        "email_taken": "e-mail in use",
        "save_conflict_email": "e-mail taken meanwhile",
        "login_invalid": "wrong password",
        "current_password_wrong": "wrong password",
        "rec_wrong_answer": "wrong answer",
    },
}
WRAP = 30  # characters per label line
LABEL_MAX = 90  # a label longer than this ends at a word with "…"
DEFAULTS = Settings()


@dataclass(frozen=True)
class Node:
    id: str
    lines: tuple[str, ...]
    shape: str  # start, question, secret, check, summary, end, success, any


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str | None = None
    style: str = "flow"  # flow, failure, edit, any
    reply: str | None = None  # the catalogue key the bot says on this path (the coverage looks for it)


@dataclass
class Graph:
    """One form's flow in one language: nodes in drawing order, edges without repeats."""

    form: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def node(self, id_: str, text: str, shape: str) -> str:
        self.nodes.setdefault(id_, Node(id_, wrap(text), shape))
        return id_

    def edge(
        self,
        source: str,
        target: str,
        label: str | None = None,
        style: str = "flow",
        reply: str | None = None,
    ) -> None:
        new = Edge(source, target, label, style, reply)
        if new not in self.edges:
            self.edges.append(new)

    @property
    def ends(self) -> list[str]:
        """The nodes the flow stops at (the legend goes below them)."""
        return [n.id for n in self.nodes.values() if n.shape in ("end", "success")]


def specs() -> dict[str, FormSpec]:
    """Every form's spec by name: all a drawing needs (no bot, no use case)."""
    return {spec.name: spec for spec in SPECS}


def wrap(text: str) -> tuple[str, ...]:
    """A label: the text's first line, at most LABEL_MAX characters ending at a word, in lines of WRAP."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    if len(first) > LABEL_MAX:
        first = first[:LABEL_MAX].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    return tuple(textwrap.wrap(first, WRAP, break_long_words=False)) or ("",)


def _said(lang: str, key: str) -> str:
    return plain(sample_html(lang, key))


def _sequences(spec: FormSpec) -> Iterable[tuple[dict[str, str], list[Field]]]:
    """The steps asked, in order, for each combination of the choices that decide which steps apply."""
    combos: list[dict[str, str]] = [{}]
    for step in spec.steps:
        if step.choices and len(step.choices) > 1 and any(s.applies for s in spec.steps):
            combos = [{**c, step.key: value} for c in combos for value in step.choices]
    for answers in combos:
        yield answers, spec.applicable(dict(answers))


def _limit(lang: str, limit: str | None) -> str | None:
    if limit is None:
        return None
    return WORDS[lang]["limit"].format(n=getattr(DEFAULTS.limits, limit))


def graph(spec: FormSpec, lang: str = "it") -> Graph:
    """The form's flow as a model both drawings are made from."""
    words, g = WORDS[lang], Graph(spec.name)
    commands = " / ".join(f"/{c}" for c in spec.entry_commands)
    g.node("start", f"{words['start']}: {commands}", "start")
    checkpoints = {cp.before: cp for cp in spec.checkpoints}
    first_answers = next(iter(_sequences(spec)))[0]
    for step in spec.steps:
        key = spec.question_key(
            step, {} if isinstance(step.stem, str) or step.stem is None else first_answers
        )
        g.node(f"s_{step.key}", _said(lang, key), "secret" if step.secret else "question")
    for checkpoint in spec.checkpoints:
        g.node(f"c_{checkpoint.key}", words["check"], "check")
    if spec.has_summary:
        g.node(SUMMARY, _said(lang, "summary"), "summary")

    def at(source: str) -> str:
        if source in (START, SUMMARY):
            return source
        return f"c_{source}" if any(cp.key == source for cp in spec.checkpoints) else f"s_{source}"

    for answers, steps in _sequences(spec):
        previous, label = "start", None
        for step in steps:
            checkpoint = checkpoints.get(step.key)
            if checkpoint is not None:
                g.edge(previous, f"c_{checkpoint.key}", label)
                previous, label = f"c_{checkpoint.key}", words["ok"]
            g.edge(previous, f"s_{step.key}", label)
            label = None if step.optional else _choice(lang, step, answers)
            previous = f"s_{step.key}"
        if spec.has_summary:
            g.edge(previous, SUMMARY, label)
    for i, step in enumerate(spec.steps):
        following = spec.steps[i + 1] if i + 1 < len(spec.steps) else None
        if step.optional and following is not None:
            target = (
                f"c_{checkpoints[following.key].key}" if following.key in checkpoints else at(following.key)
            )
            g.edge(f"s_{step.key}", target, words["skip"])
        if isinstance(step, Repeat):
            g.edge(f"s_{step.key}", f"s_{step.of.key}", words["differ"], "failure", step.of.mismatch)
    for path in PATHS.get(spec.name, ()):
        _draw_path(g, lang, at, path)
    if spec.has_summary:
        edits = [s for s in spec.steps if s.in_summary]
        g.edge(SUMMARY, f"s_{edits[0].key}", words["edit"].format(n=len(edits)), "edit")
    g.node("any", words["any"], "any")
    g.node("x_cancelled", _said(lang, "cancelled"), "end")
    g.nodes["x_expired"] = Node("x_expired", wrap(_expired(lang, spec)), "end")
    g.edge("any", "x_cancelled", words["cancel"], "any", "cancelled")
    g.edge("any", "x_expired", words["timeout"], "any", "expired")
    assert set(ANY_QUESTION) == {"cancelled", "expired"}
    return g


def _choice(lang: str, step: Field, answers: dict[str, str]) -> str | None:
    return texts.t(lang, f"btn_{answers[step.key]}") if step.key in answers else None


def _expired(lang: str, spec: FormSpec) -> str:
    command = "/" + spec.entry_commands[1 if lang == "en" and len(spec.entry_commands) > 1 else 0]
    return plain(texts.t(lang, "expired", minutes=15, command=command))


def _draw_path(g: Graph, lang: str, at: object, path: Retry | Exit) -> None:
    source = at(path.source)  # type: ignore[operator]
    limit = _limit(lang, path.limit)
    if isinstance(path, Retry):
        said = REFUSALS[lang].get(path.reply) or " ".join(wrap(_said(lang, path.reply)))
        g.edge(source, f"s_{path.target}", ", ".join(p for p in (said, limit) if p), "failure", path.reply)
        return
    target = g.node(f"x_{path.reply}", _said(lang, path.reply), "success" if path.success else "end")
    label = texts.t(lang, path.button) if path.button else limit
    style = "flow" if path.success or path.button else "failure"
    g.edge(source, target, label, style, path.reply)


# --- drawing ---------------------------------------------------------------------------------------

_MERMAID_SHAPES = {
    "start": ('(["', '"])'),
    "question": ('["', '"]'),
    "secret": ('[/"', '"/]'),
    "check": ('{"', '"}'),
    "summary": ('{{"', '"}}'),
    "end": ('(["', '"])'),
    "success": ('(["', '"])'),
    "any": ('(("', '"))'),
}
_MERMAID_ARROWS = {"flow": "-->", "failure": "-.->", "edit": "-.->", "any": "-.->"}


def mermaid(spec: FormSpec, lang: str = "it") -> str:
    """The form's flow as a Mermaid flowchart (rendered by code hosting sites and documentation tools)."""
    g = graph(spec, lang)
    out = ["flowchart TD"]
    for node in g.nodes.values():
        opening, closing = _MERMAID_SHAPES[node.shape]
        text = "<br/>".join(line.replace('"', "#quot;") for line in node.lines)
        out.append(f"  {node.id}{opening}{text}{closing}")
    for e in g.edges:
        arrow = _MERMAID_ARROWS[e.style]
        label = f"|{e.label.replace('|', '/')}|" if e.label else ""
        out.append(f"  {e.source} {arrow}{label} {e.target}")
    out.append("  classDef success fill:#d8f5d0,stroke:#2e7d32")
    out.append("  classDef stop fill:#fde2e0,stroke:#c62828")
    success = [n.id for n in g.nodes.values() if n.shape == "success"]
    stops = [n.id for n in g.nodes.values() if n.shape == "end"]
    if success:
        out.append(f"  class {','.join(success)} success")
    out.append(f"  class {','.join(stops)} stop")
    return "\n".join(out) + "\n"


_DOT_SHAPES = {
    "start": 'shape=box, style="rounded,filled", fillcolor="#e3f2fd"',
    "question": 'shape=box, style="rounded"',
    "secret": 'shape=parallelogram, style=filled, fillcolor="#fff8e1"',
    "check": 'shape=diamond, style=filled, fillcolor="#ede7f6"',
    "summary": 'shape=hexagon, style=filled, fillcolor="#e0f7fa"',
    "end": 'shape=box, style="rounded,filled", fillcolor="#fde2e0", color="#c62828"',
    "success": 'shape=box, style="rounded,filled,bold", fillcolor="#d8f5d0", color="#2e7d32"',
    "any": 'shape=ellipse, style=dashed, color="#757575"',
}
_DOT_EDGES = {
    "flow": "",
    "failure": 'style=dashed, color="#c62828", fontcolor="#c62828"',
    "edit": 'style=dashed, color="#1565c0", fontcolor="#1565c0"',
    "any": 'style=dotted, color="#757575", fontcolor="#616161"',
}


def dot(spec: FormSpec, lang: str = "it") -> str:
    """The flow in Graphviz's DOT language (for `dot -Tsvg` or `-Tpng`), with a legend below it."""
    g, words = graph(spec, lang), WORDS[lang]
    out = [
        "digraph flow {",
        '  graph [fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.35, newrank=true];',
        '  node [fontname="Helvetica", fontsize=10, margin="0.08,0.04"];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    generic = {"any", "x_cancelled", "x_expired"} - {e.target for e in g.edges if e.source != "any"}
    for node in g.nodes.values():
        if node.id not in generic:
            out.append(f"  {node.id} [{_DOT_SHAPES[node.shape]}, label={_quoted(node.lines)}];")
    for e in g.edges:
        if e.source == "any":
            continue
        attrs = [a for a in (_DOT_EDGES[e.style], f"label={_quoted(wrap(e.label))}" if e.label else "") if a]
        out.append(f"  {e.source} -> {e.target}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out += _legend(g, words, generic)
    return "\n".join([*out, "}"]) + "\n"


def _legend(g: Graph, words: dict[str, str], generic: set[str]) -> list[str]:
    """The exits from any question and a key to the lines and shapes, in one box below the flow."""
    title = _quoted((words["legend"],))
    out = ["  subgraph cluster_legend {", f'    label={title}; style=dashed; color="#9e9e9e"; fontsize=10;']
    for node_id in ("any", "x_cancelled", "x_expired"):
        node = g.nodes[node_id]
        if node_id in generic:
            out.append(f"    {node.id} [{_DOT_SHAPES[node.shape]}, label={_quoted(node.lines)}];")
    rows = []
    styles = {e.style for e in g.edges}
    for word, color, arrow in (
        ("l_flow", "#000000", "\u2500\u2500\u25b6"),
        ("l_failure", "#c62828", "- - \u25b6"),
        ("l_edit", "#1565c0", "- - \u25b6"),
        ("l_any", "#757575", "\u00b7 \u00b7 \u25b6"),
    ):
        if word[2:] not in styles:
            continue
        line = f'<font color="{color}">{arrow}</font>'
        rows.append(f'<tr><td align="left">{line}</td><td align="left">{_html(words[word])}</td></tr>')
    note = "<br/>".join(_html(line) for line in wrap(words["l_invalid"]))
    rows.append(f'<tr><td colspan="2" align="left">{note}</td></tr>')
    out.append(
        f'    k_lines [shape=plaintext, label=<<table border="0" cellspacing="1">{"".join(rows)}</table>>];'
    )
    keys = ["k_lines"]
    for shape, word in (("question", "l_question"), ("secret", "l_secret"), ("end", "l_end")):
        out.append(f"    k_{shape} [{_DOT_SHAPES[shape]}, label={_quoted((words[word],))}];")
        keys.append(f"k_{shape}")
    out.append("  }")
    # Outside the box: an edge statement inside it would pull an end of the flow into it.
    for e in g.edges:
        if e.source == "any":
            out.append(f"  any -> {e.target} [{_DOT_EDGES['any']}, label={_quoted(wrap(e.label or ''))}];")
    # Invisible edges from the ends to the legend's top: it goes below the flow, not beside it. Weight 0,
    # so they do not pull the ends down to the bottom.
    tops = keys + (["any"] if "any" in generic else [])
    out += [
        f"  {end} -> {top} [style=invis, weight=0];" for end in g.ends if end not in generic for top in tops
    ]
    return out


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quoted(lines: Iterable[str]) -> str:
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def all_diagrams(lang: str = "it") -> dict[str, str]:
    """Every form's diagram, by form name."""
    return {name: mermaid(spec, lang) for name, spec in specs().items()}


def render(spec: FormSpec, lang: str, fmt: str) -> bytes:
    """The diagram drawn by Graphviz's `dot` program as `fmt` ("svg" or "png")."""
    import graphviz  # the binding runs the `dot` program; imported here so Mermaid needs neither

    return graphviz.Source(dot(spec, lang)).pipe(format=fmt)
