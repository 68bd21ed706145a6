"""Flow coverage: which questions and paths of each form the scripts reached, and which never (as Rasa's
story coverage does for its stories).

The paths are the diagrams' (diagram.py): a replay's inputs (runner.Observation: the question waiting
before and after, what the bot said) are mapped onto them. A move from one question to another takes the
edge between them (or the two through a check); a move back to the same question, or out of the form,
takes the edge whose reply the bot was heard saying (a wrong password, a lockout, «Salva»).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from unogas_bot import rules
from unogas_bot.flows.diagram import Edge, Graph, graph, specs
from unogas_bot.flows.runner import Observation, Outcome
from unogas_bot.flows.samples import signature
from unogas_bot.flows.script import normalize

ASKED = ("question", "secret", "check", "summary")  # the nodes counted as questions


@dataclass
class FormCoverage:
    """One form: its questions and paths, and those the scripts reached."""

    graph: Graph
    nodes: set[str] = field(default_factory=set)
    edges: set[Edge] = field(default_factory=set)

    @property
    def questions(self) -> list[str]:
        return [n.id for n in self.graph.nodes.values() if n.shape in ASKED]

    @property
    def paths(self) -> list[Edge]:
        return self.graph.edges


def coverage(outcomes: Iterable[Outcome]) -> dict[str, FormCoverage]:
    """Every form's coverage by the replays in `outcomes`."""
    result = {name: FormCoverage(graph(spec, "it")) for name, spec in specs().items()}
    entries = {f"/{command}": name for name, spec in specs().items() for command in spec.entry_commands}
    for outcome in outcomes:
        for seen in outcome.observations:
            _take(result, entries, seen)
    return result


def _take(result: dict[str, FormCoverage], entries: dict[str, str], seen: Observation) -> None:
    said = " ".join(normalize(line) for line in seen.said)

    def heard(edge: Edge) -> bool:
        return edge.reply is None or signature(seen.language, edge.reply) in said

    if seen.before is None:
        name = seen.after[0] if seen.after else entries.get(seen.typed.split(" ", 1)[0].split("@")[0].lower())
        if name is None:
            return
        cover = result[name]
        target = _node(cover.graph, seen.after[1]) if seen.after else None
        cover.nodes.add("start")
        _walk(cover, "start", target, heard, seen.typed)
        return
    cover = result[seen.before[0]]
    source = _node(cover.graph, seen.before[1])
    cover.nodes.add(source)
    same_form = seen.after is not None and seen.after[0] == seen.before[0]
    target = _node(cover.graph, seen.after[1]) if same_form and seen.after else None
    if not _walk(cover, source, target, heard, seen.typed) and target is None:
        # Out of the form by a way any question has (/annulla, the timeout).
        for edge in cover.graph.edges:
            if edge.source == "any" and heard(edge):
                cover.edges.add(edge)
                cover.nodes.update(("any", edge.target))


def _node(g: Graph, step: str) -> str:
    return step if step in g.nodes and not step.startswith(("s_", "c_", "x_")) else f"s_{step}"


def _walk(cover: FormCoverage, source: str, target: str | None, heard: object, typed: str) -> bool:
    """Take the paths from `source` to `target` (None: to an end) directly or through a check, whose
    replies the bot said; True when one was taken."""
    g = cover.graph
    skipped = rules.replies.is_skip(typed)
    skip_words = {"salta", "skip"}

    def fits(edge: Edge) -> bool:
        if not heard(edge):  # type: ignore[operator]
            return False
        if edge.label in skip_words:  # the optional question's "skip" edge, only when skipped
            return skipped
        return True

    def ends_well(node: str) -> bool:
        return node == target if target is not None else g.nodes[node].shape in ("end", "success")

    taken = False
    if source == "summary" and target is not None and target.startswith("s_"):
        # The summary's edit buttons are one bundled edge, to any answer.
        for edge in g.edges:
            if edge.source == source and edge.style == "edit":
                cover.edges.add(edge)
                cover.nodes.add(target)
                taken = True
    for first in (e for e in g.edges if e.source == source and fits(e)):
        if ends_well(first.target):
            cover.edges.add(first)
            cover.nodes.add(first.target)
            taken = True
        elif g.nodes[first.target].shape == "check":
            for second in (e for e in g.edges if e.source == first.target and fits(e)):
                if ends_well(second.target):
                    cover.edges.update((first, second))
                    cover.nodes.update((first.target, second.target))
                    taken = True
    return taken


def describe(name: str, cover: FormCoverage) -> list[str]:
    """The listing of one form: its figures, then what was never reached."""
    g = cover.graph
    asked = cover.questions
    reached = [n for n in asked if n in cover.nodes]
    taken = [e for e in cover.paths if e in cover.edges]
    lines = [f"{name}: {len(reached)}/{len(asked)} questions, {len(taken)}/{len(cover.paths)} paths"]
    for node in asked:
        if node not in cover.nodes:
            lines.append(f"  never asked: {node} «{' '.join(g.nodes[node].lines)}»")
    for edge in cover.paths:
        if edge not in cover.edges:
            label = f" ({edge.label})" if edge.label else ""
            shown = " ".join(g.nodes[edge.target].lines)
            lines.append(f"  never taken: {edge.source} -> {edge.target}{label} «{shown}»")
    return lines


def listing(result: dict[str, FormCoverage]) -> str:
    """The whole report, one block per form, and the totals."""
    out: list[str] = []
    for name, cover in result.items():
        out += describe(name, cover)
    asked = sum(len(c.questions) for c in result.values())
    reached = sum(len([n for n in c.questions if n in c.nodes]) for c in result.values())
    paths = sum(len(c.paths) for c in result.values())
    taken = sum(len([e for e in c.paths if e in c.edges]) for c in result.values())
    out.append(f"total: {reached}/{asked} questions, {taken}/{paths} paths")
    return "\n".join(out) + "\n"
