"""Flow scripts: reading one, matching a replay against it, and rewriting its expected lines.

A flow script is a console transcript (see `session.py`) with a few additions:

    # language: en            headers, before the first input: language (it, en), user (a Telegram user
    # customers: demo         id), chat (private, group), customers (demo, or a CSV path relative to the
                              script), accounts (none, or demo: a registered, logged-in demo customer),
                              password and answer (what a masked input types), now (the instant the
                              bot's clock stands at, default 2026-11-29T10:00 UTC)
    > /registrati             what the customer types; `> [Salva]` presses a button, `> /contatto +39...`
                              shares a contact, `> ••••••••` types the script's password or answer
                              (secrets.py: the marks of a second or a refused one)
    bot: Passo 1 di 12        what the bot must say; continuation lines are indented
         Qual è il suo {*}    `{*}` matches any text, `{re:[0-9]+}` a regular expression
    ...                       any number of bot lines
    # a comment               (a line starting with #)

Lines are compared after whitespace normalisation (runs of spaces are one, ends stripped); blank lines
are ignored.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from unogas_bot import rules

ELLIPSIS = "..."
HEADERS = ("language", "user", "chat", "customers", "accounts", "password", "answer", "now")
# The instant a script runs at when it names none (`# now:`): the bot's clock stands still there, so a date
# it shows (a profile's registration day) is the same whatever day the script is replayed.
DEFAULT_NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
EARLIEST_NOW, LATEST_NOW = datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, 23, 59, tzinfo=UTC)
MAX_USER_ID = 2**63 - 1  # what the database's user id columns hold (Telegram's ids have 52 bits)
_HEADER = re.compile(r"#\s*([a-z][a-z_-]*)\s*:\s*(.*?)\s*$")
_PATTERN = re.compile(r"\{\*\}|\{re:((?:[^{}]|\{[^{}]*\})*)\}")


class ScriptError(ValueError):
    """A script that cannot be read: says the line."""


@dataclass
class Line:
    """One line of a script: its 1-based number and its text as written."""

    number: int
    text: str

    @property
    def normalized(self) -> str:
        return normalize(self.text)


@dataclass
class Step:
    """An input and the bot lines expected after it (the first step's input is None: what the bot says
    before anything is typed, normally nothing)."""

    input: Line | None
    expected: list[Line] = field(default_factory=list)
    comments: list[Line] = field(default_factory=list)  # comments among the expected lines, kept by --update
    body: list[str] = field(default_factory=list)  # every line after the input as written, blank ones too


@dataclass
class Script:
    path: Path
    headers: dict[str, str]
    header_lines: list[str]
    steps: list[Step]
    header_numbers: dict[str, int] = field(default_factory=dict)  # the line of each header

    def where(self, header: str) -> str:
        """`path:line` of a header (the file alone when the script does not have it), for an error."""
        number = self.header_numbers.get(header)
        return f"{self.path}:{number}" if number else str(self.path)

    @property
    def inputs(self) -> list[Line]:
        return [step.input for step in self.steps if step.input is not None]


def normalize(text: str) -> str:
    return " ".join(text.split())


def is_input(text: str) -> bool:
    return text == ">" or text.startswith("> ")


def parse(text: str, path: Path = Path("<script>")) -> Script:
    """Read a script; `ScriptError` names the line of an unknown header or a bad pattern."""
    headers: dict[str, str] = {}
    numbers: dict[str, int] = {}
    header_lines: list[str] = []
    steps = [Step(None)]
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):  # a BOM (Notepad) aside
        line = Line(number, raw.rstrip())
        if is_input(line.text):
            steps.append(Step(line))
            continue
        if len(steps) > 1 or not raw.startswith("#"):  # before the first input, # lines are headers
            steps[-1].body.append(line.text)
        if raw.startswith("#"):
            header = _HEADER.fullmatch(raw)
            name = header.group(1) if header else None
            if len(steps) == 1 and name in headers:
                raise ScriptError(
                    f"{path}:{number}: header {name!r} given twice (first on line {numbers[name]})"
                )
            if len(steps) > 1 and name in HEADERS:  # a setting that would silently do nothing there
                first = steps[1].input.number if steps[1].input else number
                raise ScriptError(
                    f"{path}:{number}: header {name!r} after the first input (line {first}): headers go "
                    "above it (a comment there must not look like `# word: ...`)"
                )
            if len(steps) == 1 and header and header.group(1) in HEADERS:
                headers[header.group(1)] = header.group(2)
                numbers[header.group(1)] = number
                header_lines.append(line.text)
            elif len(steps) == 1 and header:
                raise ScriptError(f"{path}:{number}: {_unknown(header.group(1))}")
            elif len(steps) == 1:
                header_lines.append(line.text)
            else:
                steps[-1].comments.append(line)
        elif line.normalized:
            try:
                _compiled(line.normalized)
            except re.error as exc:
                raise ScriptError(f"{path}:{number}: bad {{re:...}} pattern: {exc}") from None
            steps[-1].expected.append(line)
    script = Script(path, headers, header_lines, steps, numbers)
    _check_customers(script)
    choices = {"language": ("it", "en"), "chat": ("private", "group"), "accounts": ("none", "demo")}
    for name, allowed in choices.items():
        if headers.get(name, allowed[0]) not in allowed:
            wanted = " or ".join(allowed)
            raise ScriptError(f"{script.where(name)}: {name} must be {wanted}, not {headers[name]!r}")
    user = headers.get("user", "1")
    if not (user.isdigit() and 1 <= int(user) <= MAX_USER_ID):
        raise ScriptError(
            f"{script.where('user')}: user must be a Telegram user id (a whole number from 1 to 2^63-1), "
            f"not {user!r}"
        )
    _check_secrets(script)
    if "now" in headers:
        script_now(headers, path, numbers.get("now"))  # refused here rather than halfway through a replay
    if len(steps) == 1:  # an empty file (a failed copy) would pass, having checked nothing
        raise ScriptError(f"{path}: nothing is typed (no `> ` line): the script checks nothing")
    return script


def _check_secrets(script: Script) -> None:
    """The `password` and `answer` headers are what a mask types where a valid one is meant: the bot's
    rules must take them (the value is not repeated: a script may be shown in a CI log)."""
    checks: dict[str, Callable[[str], str]] = {
        "password": rules.password.validate,
        "answer": lambda value: rules.answer.validate(value, ""),
    }
    for name, check in checks.items():
        value = script.headers.get(name)
        if not value:
            continue
        try:
            check(value)
        except rules.Invalid as exc:
            reason = exc.reason.split(".", 1)[-1]
            raise ScriptError(
                f"{script.where(name)}: {name}: the bot's rules refuse it ({reason}): a mask types it where "
                f"a valid {name} is meant"
            ) from None


def _check_customers(script: Script) -> None:
    """A `customers` CSV is a file inside the script's folder: a script (from a merge request, say) must
    not make `flows test` read, and quote in its error, any file the machine lets it read."""
    name = script.headers.get("customers", "demo")
    if name in ("demo", "none"):
        return
    folder = script.path.parent.resolve()
    if not (folder / name).resolve().is_relative_to(folder):
        raise ScriptError(
            f"{script.where('customers')}: customers: {name!r} must be a CSV file inside the script's "
            "folder (a path relative to it), or demo or none"
        )


def read(path: Path) -> Script:
    """Read and parse the script at `path`; one `ScriptError` naming it (and the line) when it cannot be
    read: missing, a folder, not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read it: {exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScriptError(
            f"{path}:{line}: not UTF-8: save the script as UTF-8, or convert it with "
            f"`iconv -f WINDOWS-1252 -t UTF-8 {path.name} > {path.stem}-utf8{path.suffix}`"
        ) from None
    return parse(text, path)


def _unknown(name: str) -> str:
    """What an unknown header is told: the known ones, and the one it may be a misspelling of."""
    close = difflib.get_close_matches(name, HEADERS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown header {name!r}{hint}; the headers are {', '.join(HEADERS)} "
        "(a comment before the first input must not look like `# word: ...`)"
    )


def script_now(headers: dict[str, str], path: Path = Path("<script>"), line: int | None = None) -> datetime:
    """The frozen instant of a script: its `# now:` header (ISO 8601, UTC unless it names a zone), or
    DEFAULT_NOW."""
    given = headers.get("now")
    if given is None:
        return DEFAULT_NOW
    where = f"{path}:{line}" if line else str(path)
    try:
        at = datetime.fromisoformat(given)
    except ValueError:
        raise ScriptError(f"{where}: now must be a time such as 2026-11-29T10:00, not {given!r}") from None
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if not EARLIEST_NOW <= at <= LATEST_NOW:  # the bot's date arithmetic (sessions, limits) overflows
        raise ScriptError(f"{where}: now must be between 2000-01-01 and 2999-12-31, not {given!r}")
    return at


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """The regular expression of an expected line with `{*}` or `{re:...}`, None for a plain line."""
    if "{" not in pattern or not _PATTERN.search(pattern):
        return None
    parts, end = [], 0
    for match in _PATTERN.finditer(pattern):
        parts.append(re.escape(pattern[end : match.start()]))
        parts.append(".*?" if match.group(1) is None else f"(?:{match.group(1)})")
        end = match.end()
    parts.append(re.escape(pattern[end:]))
    return re.compile("".join(parts))


def line_matches(expected: str, actual: str) -> bool:
    """Does the `actual` line match the `expected` one, after whitespace normalisation?"""
    expected, actual = normalize(expected), normalize(actual)
    regex = _compiled(expected)
    return expected == actual if regex is None else regex.fullmatch(actual) is not None


@dataclass
class Mismatch:
    """Where a step's bot lines first differ: the expected line (None: the script expected no more) and
    the actual line (None: the bot said no more)."""

    step: Step
    expected: Line | None
    actual: str | None
    actual_lines: list[str]


def match_step(step: Step, actual: Sequence[str]) -> Mismatch | None:
    """Match the bot lines `actual` (printed after this step's input) against its expected lines; `...`
    matches any number of lines. None when they match; else the first difference of the longest match."""
    wanted = [line.normalized for line in step.expected]
    got = [normalize(text) for text in actual if normalize(text)]
    best = (0, 0)
    seen: set[tuple[int, int]] = set()

    def walk(i: int, j: int) -> bool:
        nonlocal best
        if (i, j) in seen:
            return False
        seen.add((i, j))
        if (i, j) > best:
            best = (i, j)
        if i == len(wanted):
            return j == len(got)
        if wanted[i] == ELLIPSIS:
            return any(walk(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and line_matches(wanted[i], got[j]) and walk(i + 1, j + 1)

    if walk(0, 0):
        return None
    i, j = best
    while i < len(wanted) and wanted[i] == ELLIPSIS:
        i += 1
    return Mismatch(
        step,
        step.expected[i] if i < len(wanted) else None,
        got[j] if j < len(got) else None,
        [text for text in actual if normalize(text)],
    )


def describe(mismatch: Mismatch, path: Path) -> str:
    """A failure as support staff read it: the script's line number, what was expected, what came, and
    the step's expected and actual lines side by side as a diff."""
    step = mismatch.step
    where = step.input.number if step.input else 0
    typed = f" after `{step.input.text}`" if step.input else ""
    if mismatch.expected is not None:
        head = f"{path}:{mismatch.expected.number}: expected{typed}:\n    {mismatch.expected.text.strip()}"
    else:
        head = f"{path}:{where}: the bot said more{typed} than the script expects"
    got = mismatch.actual if mismatch.actual is not None else "(nothing more)"
    lines = [
        head,
        f"  but the bot said:\n    {got}",
        "  this step, expected (-, with line numbers) and actual (+):",
    ]
    lines += [f"  - {line.number:4d} {line.text.strip()}" for line in step.expected]
    lines += [f"  +      {text.strip()}" for text in mismatch.actual_lines]
    return "\n".join(lines)


def render(script: Script, actual: Sequence[Sequence[str]], keep: Sequence[bool]) -> str:
    """The script with the expected lines of each step whose `keep` is False replaced by the bot's actual
    lines (`--update`); headers, inputs, comments and matching steps stay as written."""
    out = list(script.header_lines)
    for step, lines, kept in zip(script.steps, actual, keep, strict=True):
        if step.input is not None:
            out.append(step.input.text)
        if kept:
            out += step.body
        else:
            out += [line.text for line in step.comments] + [text.rstrip() for text in lines]
    return "\n".join(out) + "\n"
