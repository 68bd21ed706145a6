"""`flows test --junit FILE`: the replays as JUnit XML, the report CI systems (GitLab, Jenkins, GitHub
Actions' test reporters) read: one test case per script, a failure with the script's lines as `describe`
prints them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from unogas_bot.flows.runner import Outcome
from unogas_bot.flows.script import describe


def junit_xml(outcomes: Sequence[Outcome], name: str = "flow scripts") -> bytes:
    """The outcomes as one JUnit <testsuite>; a script's class name is its folder, dotted."""
    failures = sum(not outcome.passed for outcome in outcomes)
    total = sum(outcome.seconds for outcome in outcomes)
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{total:.3f}",
    )
    for outcome in outcomes:
        path = outcome.script.path
        case = ET.SubElement(
            suite,
            "testcase",
            classname=".".join(Path(path.parent).parts[-3:]) or "flows",
            name=path.stem,
            file=str(path),
            time=f"{outcome.seconds:.3f}",
        )
        if not outcome.passed:
            first = outcome.mismatches[0]
            where = (
                first.expected.number
                if first.expected
                else (first.step.input.number if first.step.input else 0)
            )
            failure = ET.SubElement(
                case, "failure", message=f"{path}:{where}: {len(outcome.mismatches)} step(s) did not match"
            )
            failure.text = "\n".join(describe(m, path) for m in outcome.mismatches)
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"
