"""A picture of every flow, generated from its form spec (conversations/spec.py), never drawn by hand.

Each question is a node labelled with its text in the chosen language; a field offering choices branches
(the person/business questions follow from the fields' `applies`); an optional question has a "skip"
edge; a secret typed twice has its repetition, with the way back when the two differ; a checkpoint (the
identity check) is a decision with its outcomes; a form with a summary ends in it, with Save, Cancel and
an edit edge back to every answer; and the exits any question has (cancel, timeout) are drawn once.
Output is Mermaid, which code hosting sites and documentation tools render.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from conversations.engine import Form
from conversations.spec import Field, FormSpec, Repeat
from unogas_bot.bot.app import FORMS
from unogas_bot.i18n import texts

# The words of the drawing that are not catalogue texts, per language.
WORDS = {
    "it": {
        "start": "inizio",
        "skip": "salta",
        "differ": "non coincidono",
        "ok": "dati corretti",
        "mismatch": "non corrispondono",
        "locked": "troppi tentativi",
        "edit": "modifica",
        "any": "qualsiasi domanda",
        "cancel": "/annulla",
        "timeout": "15 minuti di silenzio",
        "end": "fine",
    },
    "en": {
        "start": "start",
        "skip": "skip",
        "differ": "they differ",
        "ok": "details match",
        "mismatch": "no match",
        "locked": "too many attempts",
        "edit": "change",
        "any": "any question",
        "cancel": "/cancel",
        "timeout": "15 minutes of silence",
        "end": "end",
    },
}
# What a checkpoint's "too many attempts" says, and the exits it has beyond match / no match / locked, by
# form (catalogue keys); a form not named here gets the plain words.
LOCKED = {"registration": "verify_locked", "recovery": "rec_too_many"}
EXTRA_EXITS = {"registration": ("already_registered",)}


def forms() -> dict[str, Form]:
    return {form.name: form for form in FORMS}


def _label(lang: str, key: str, limit: int = 60, **params: object) -> str:
    """A catalogue text as a node label: plain text, its first meaningful line, at most `limit` characters."""
    text = re.sub(r"<[^>]+>", "", texts.t(lang, key, **params))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else key
    first = first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
    return first.replace('"', "#quot;")


def _sequences(spec: FormSpec) -> Iterable[tuple[dict[str, str], list[Field]]]:
    """The steps asked, in order, for each combination of the choices that decide which steps apply."""
    combos: list[dict[str, str]] = [{}]
    for step in spec.steps:
        if step.choices and len(step.choices) > 1:
            combos = [{**c, step.key: value} for c in combos for value in step.choices]
    for answers in combos:
        yield answers, spec.applicable(dict(answers))


def mermaid(form: Form, lang: str = "it") -> str:
    """The form's flow as a Mermaid flowchart."""
    spec, words = form.spec, WORDS[lang]
    lines = ["flowchart TD"]
    node = {step.key: f"s_{step.key}" for step in spec.steps}
    commands = " / ".join(f"/{c}" for c in spec.entry_commands)
    lines.append(f'  start(["{words["start"]}: {commands}"])')
    for step in spec.steps:
        key = spec.question_key(step, {})
        if step.stem is not None and not isinstance(step.stem, str):
            key = spec.question_key(step, next(iter(_sequences(spec)))[0])  # the first branch's wording
        shape = ('[/"', '"/]') if step.secret else ('["', '"]')
        lines.append(f"  {node[step.key]}{shape[0]}{_label(lang, key)}{shape[1]}")
    edges: list[str] = []

    def edge(a: str, b: str, label: str | None = None, dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        line = f"  {a} {arrow}|{label}| {b}" if label else f"  {a} {arrow} {b}"
        if line not in edges:
            edges.append(line)

    checkpoints = {cp.before: cp for cp in spec.checkpoints}
    for answers, steps in _sequences(spec):
        previous, label = "start", None
        for step in steps:
            target = node[step.key]
            checkpoint = checkpoints.get(step.key)
            if checkpoint is not None:
                decision = f"c_{checkpoint.key}"
                edge(previous, decision, label)
                previous, label = decision, words["ok"]
            edge(previous, target, label)
            label = None
            if step.key in answers:
                label = texts.t(lang, f"btn_{answers[step.key]}")
            if step.optional:
                label = None
            previous = target
        last = previous
        if spec.has_summary:
            edge(last, "summary", label)
        else:
            edge(last, "done", label)
    for i, step in enumerate(spec.steps):
        if step.optional and i + 1 < len(spec.steps):
            following = next((s for s in spec.steps[i + 1 :]), None)
            target = node[following.key] if following else "summary"
            if following is not None and following.key in checkpoints:
                target = f"c_{checkpoints[following.key].key}"
            edge(node[step.key], target, words["skip"])
        if isinstance(step, Repeat):
            edge(node[step.key], node[step.of.key], words["differ"], dotted=True)
    for checkpoint in spec.checkpoints:
        decision = f"c_{checkpoint.key}"
        lines.append(f'  {decision}{{"{_checkpoint_label(spec, lang)}"}}')
        first = next(s for s in spec.steps if s.key in checkpoint.checks)
        edge(decision, node[first.key], words["mismatch"], dotted=True)
        edge(decision, "locked", words["locked"])
        for key in EXTRA_EXITS.get(spec.name, ()):
            edge(decision, f"x_{key}", None)
            lines.append(f'  x_{key}(["{_label(lang, key)}"])')
        locked_key = LOCKED.get(spec.name)
        locked = _label(lang, locked_key) if locked_key else words["locked"]
        lines.append(f'  locked(["{locked}"])')
    if spec.has_summary:
        lines.append(f'  summary{{{{"{_label(lang, "summary")}"}}}}')
        lines.append(f'  saved(["{_label(lang, "saved")}"])')
        lines.append(f'  cancelled(["{_label(lang, "cancelled")}"])')
        edge("summary", "saved", texts.t(lang, "btn_save"))
        edge("summary", "cancelled", texts.t(lang, "btn_cancel"))
        for step in spec.steps:
            if step.in_summary:
                edge("summary", node[step.key], words["edit"], dotted=True)
    else:
        lines.append(f'  done(["{words["end"]}"])')
    lines.append(f'  any(("{words["any"]}"))')
    lines.append(f'  aborted(["{_label(lang, "cancelled")}"])')
    command = "/" + spec.entry_commands[1 if lang == "en" and len(spec.entry_commands) > 1 else 0]
    lines.append(f'  expired(["{_label(lang, "expired", minutes=15, command=command)}"])')
    edge("any", "aborted", words["cancel"], dotted=True)
    edge("any", "expired", words["timeout"], dotted=True)
    return "\n".join(lines + edges) + "\n"


def _checkpoint_label(spec: FormSpec, lang: str) -> str:
    return {"it": "controllo dei dati", "en": "data check"}[lang] + f" ({spec.name})"


def all_diagrams(lang: str = "it") -> dict[str, str]:
    """Every form's diagram, by form name."""
    return {name: mermaid(form, lang) for name, form in forms().items()}


# Mermaid's node shapes (the opening bracket) as Graphviz shapes and styles.
_SHAPES = {
    "([": ("box", "rounded"),
    "[/": ("parallelogram", ""),
    "{{": ("hexagon", ""),
    "{": ("diamond", ""),
    "((": ("circle", ""),
    "[": ("box", ""),
}
_NODE = re.compile(r'^\s+(\w+)(\(\[|\[/|\{\{|\{|\(\(|\[)"(.*)"(?:\]\)|/\]|\}\}|\}|\)\)|\])$')
_EDGE = re.compile(r"^\s+(\w+) (-->|-\.->)(?:\|(.*?)\|)? (\w+)$")


def dot(form: Form, lang: str = "it") -> str:
    """The same flowchart as `mermaid`, in Graphviz's DOT language (for `dot -Tsvg` or `-Tpng`)."""
    out = ["digraph flow {", '  node [fontname="Helvetica"]; edge [fontname="Helvetica"];']
    for line in mermaid(form, lang).splitlines()[1:]:
        if edge := _EDGE.match(line):
            a, arrow, label, b = edge.groups()
            attrs = ([f"label={_quoted(label)}"] if label else []) + (
                ["style=dashed"] if arrow == "-.->" else []
            )
            out.append(f"  {a} -> {b}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
        elif node := _NODE.match(line):
            name, opening, label = node.groups()
            shape, style = _SHAPES[opening]
            extra = f', style="{style}"' if style else ""
            out.append(f"  {name} [shape={shape}{extra}, label={_quoted(label)}];")
        else:
            raise ValueError(f"a diagram line DOT does not know: {line!r}")
    return "\n".join([*out, "}"]) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(form: Form, lang: str, fmt: str) -> bytes:
    """The diagram drawn by Graphviz's `dot` program as `fmt` ("svg" or "png")."""
    import graphviz  # the binding runs the `dot` program; imported here so Mermaid needs neither

    return graphviz.Source(dot(form, lang)).pipe(format=fmt)
