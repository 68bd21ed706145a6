"""`unogas-bot flows test|record|diagram|coverage|preview`: flow scripts support staff write and check,
the picture of every flow, what the scripts reach, and every message as the customer sees it. The format
is in unogas_bot/flows/script.py and docs/support.md."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import logging
import shutil
import sys
from pathlib import Path

from unogas_bot.cli.common import CliError, telegram_user_id
from unogas_bot.cli.console import EndedMidForm, run_console
from unogas_bot.clock import frozen
from unogas_bot.config import Settings
from unogas_bot.flows.coverage import coverage, listing
from unogas_bot.flows.diagram import dot, mermaid, render, specs
from unogas_bot.flows.fixtures import ACCOUNTS, DEMO_EMAIL, demo_account
from unogas_bot.flows.junit import junit_xml
from unogas_bot.flows.preview import page
from unogas_bot.flows.runner import (
    DEFAULT_USER,
    Outcome,
    Replayer,
    find_scripts,
    matches,
    report,
    run_scripts,
)
from unogas_bot.flows.script import DEFAULT_NOW, ScriptError
from unogas_bot.flows.secrets import ANSWER, PASSWORD, SecretBook
from unogas_bot.i18n import texts
from unogas_bot.service.context import Services

FORMATS = ("mermaid", "dot", "svg", "png")  # of `flows diagram`
_SUFFIXES = {".png": "png", ".svg": "svg", ".dot": "dot", ".gv": "dot"}  # the format an -o file's name says


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    flows = sub.add_parser("flows", help="flow scripts (replayed as tests) and flow diagrams")
    fsub = flows.add_subparsers(dest="action", required=True)
    test = fsub.add_parser("test", help="replay flow scripts on a throwaway database: PASS or FAIL each")
    test.add_argument("paths", nargs="+", metavar="FILE|DIR", help="scripts, or folders of *.flow files")
    test.add_argument("--update", action="store_true", help="rewrite the bot lines of failing steps")
    test.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML, for CI systems")
    test.add_argument(
        "-k",
        dest="pattern",
        metavar="PATTERN",
        help="only the scripts whose path contains PATTERN (or matches it)",
    )
    cover = fsub.add_parser(
        "coverage", help="replay scripts and list the questions and paths they never reach"
    )
    cover.add_argument("paths", nargs="+", metavar="FILE|DIR", help="scripts, or folders of *.flow files")
    cover.add_argument("-k", dest="pattern", metavar="PATTERN", help="only the scripts whose path matches")
    record = fsub.add_parser("record", help="chat in the terminal and save the session as a flow script")
    record.add_argument("file", help="the script to write (overwritten)")
    record.add_argument("--language", default="it", choices=("it", "en"), help="the user's language")
    record.add_argument(
        "--user-id", type=telegram_user_id, default=DEFAULT_USER, help="the Telegram user id to play"
    )
    record.add_argument(
        "--accounts",
        default="none",
        choices=ACCOUNTS,
        help="demo: start with the demo customer registered and logged in (# accounts: demo)",
    )
    record.add_argument(
        "--password", help="with --accounts demo: the demo customer's password (else generated)"
    )
    record.add_argument("--answer", help="with --accounts demo: the demo customer's security answer")
    preview = fsub.add_parser("preview", help="every message of the forms as chat bubbles, on one HTML page")
    preview.add_argument("form", nargs="?", help="one form only (default: all, and every other message)")
    preview.add_argument(
        "--language", choices=("it", "en"), help="one language (default: both, side by side)"
    )
    preview.add_argument("-o", "--output", metavar="FILE", help="the HTML file to write (default: stdout)")
    diagram = fsub.add_parser("diagram", help="draw a flow from its form definition (Mermaid)")
    diagram.add_argument("form", nargs="?", default="registration", help="the form (default: registration)")
    diagram.add_argument("--language", default="it", choices=("it", "en"), help="the language of the labels")
    diagram.add_argument(
        "--format",
        choices=FORMATS,
        help="default: the -o file's (.png, .svg, .dot or .gv), else mermaid",
    )
    diagram.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def _quiet(settings: Settings, args: argparse.Namespace) -> None:
    """Each script builds a database and starts a bot: their INFO lines would bury the PASS/FAIL lines."""
    if not args.verbose and settings.log_level is None:
        logging.getLogger().setLevel(logging.WARNING)


def _scripts(args: argparse.Namespace) -> list[Path]:
    paths = list(find_scripts(args.paths))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise CliError(f"no such flow script: {', '.join(missing)}")
    if args.pattern:
        paths = [path for path in paths if matches(path, args.pattern)]
        if not paths:
            raise CliError(f"no *.flow script matches -k {args.pattern!r}")
    if not paths:
        raise CliError("no *.flow script found")
    return paths


def _replayed(settings: Settings, paths: list[Path], update: bool = False) -> list[Outcome]:
    try:
        return asyncio.run(run_scripts(paths, settings, update=update))
    except ScriptError as exc:
        raise CliError(str(exc)) from None


def cmd_flows_test(settings: Settings, args: argparse.Namespace) -> int:
    _quiet(settings, args)
    if args.junit:  # said before the run, not after every script was replayed
        target = Path(args.junit)
        if target.is_dir():
            raise CliError(f"cannot write {target}: it is a folder; name the XML file to write")
        if not target.parent.is_dir():
            raise CliError(f"cannot write {target}: there is no folder {target.parent}")
    outcomes = _replayed(settings, _scripts(args), update=args.update)
    for outcome in outcomes:
        print(report(outcome, updated=args.update))
    failed = sum(not outcome.passed for outcome in outcomes)
    verb = "updated" if args.update else "failed"
    print(f"{len(outcomes)} script(s): {len(outcomes) - failed} passed, {failed} {verb}")
    if args.junit:
        try:
            Path(args.junit).write_bytes(junit_xml(outcomes))
        except OSError as exc:
            raise CliError(f"cannot write {args.junit}: {exc.strerror or type(exc).__name__}") from None
    return 1 if failed and not args.update else 0


def cmd_flows_coverage(settings: Settings, args: argparse.Namespace) -> int:
    """Replay the scripts and list, per form, the questions and paths of its diagram they never reach."""
    _quiet(settings, args)
    outcomes = _replayed(settings, _scripts(args))
    failed = [outcome for outcome in outcomes if not outcome.passed]
    print(listing(coverage(outcomes)), end="")
    if failed:
        print(f"{len(failed)} script(s) failed: run `flows test` for the details", file=sys.stderr)
    return 1 if failed else 0


def cmd_flows_record(settings: Settings, args: argparse.Namespace) -> int:
    """The console on a throwaway database with the demo customers (as `flows test` replays it); the
    session goes to the file with every secret masked, right or wrong (a masked input replays as the
    script's own secret, a marked one as a second or a refused one: flows/secrets.py)."""
    _quiet(settings, args)
    path = Path(args.file)
    # Said before the session, not after it (when the whole session would be lost).
    if path.is_dir():
        raise CliError(f"cannot write {path}: it is a folder; name the script to write inside it")
    if not path.parent.is_dir():
        raise CliError(f"cannot write {path}: there is no folder {path.parent}")
    transcript = io.StringIO()
    headers = [
        f"# language: {args.language}",
        f"# user: {args.user_id}",
        "# customers: demo",
        *(["# accounts: demo"] if args.accounts == "demo" else []),
        f"# now: {DEFAULT_NOW:%Y-%m-%dT%H:%M}",
    ]

    async def work() -> int:
        replayer = Replayer(settings)
        base = {
            PASSWORD: args.password or replayer.secrets[PASSWORD],
            ANSWER: args.answer or replayer.secrets[ANSWER],
        }

        async def prepare(services: Services) -> SecretBook | None:
            if args.accounts != "demo":
                return None
            await demo_account(services, args.user_id, base[PASSWORD], base[ANSWER])
            print(
                f"the demo customer is registered and logged in: {DEMO_EMAIL}, password «{base[PASSWORD]}», "
                f"security answer «{base[ANSWER]}» (for this recording only; the file masks them)",
                file=sys.stderr,
            )
            book = SecretBook()
            book.label(PASSWORD, base[PASSWORD], add=True)
            book.label(ANSWER, base[ANSWER], add=True)
            return book

        try:
            db, url = await replayer.database(demo=True)
            recording = dataclasses.replace(replayer.settings, database_url=url)
            return await run_console(
                recording,
                user_id=args.user_id,
                language=args.language,
                db=db,
                transcript=transcript,
                persistent=False,
                clock=frozen(DEFAULT_NOW),
                prepare=prepare,
                lines_before=len(headers),
            )
        except EndedMidForm as exc:
            print(f"note: {exc}", file=sys.stderr)
            return 0
        finally:
            replayer.close()

    interrupted = False
    try:
        status = asyncio.run(work())
    except KeyboardInterrupt:  # how most people leave a terminal program: the session so far is kept
        status, interrupted = 130, True
    try:
        path.write_text("\n".join(headers) + "\n" + transcript.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None
    if interrupted:
        print("note: interrupted: the session so far is saved", file=sys.stderr)
    print(f"saved {path}: replay it with `unogas-bot flows test {path}`", file=sys.stderr)
    return status


def _diagram_format(args: argparse.Namespace) -> str:
    """`--format`, else the one the `-o` file's name says (a .png gets a PNG), else Mermaid."""
    named = _SUFFIXES.get(Path(args.output).suffix.lower()) if args.output else None
    if args.format is None:
        return named or "mermaid"
    if named is not None and named != args.format:
        raise CliError(
            f"{args.output} is named as a {named} file but --format is {args.format}: rename it or drop "
            "--format"
        )
    return str(args.format)


def cmd_flows_diagram(settings: Settings, args: argparse.Namespace) -> int:
    """Mermaid or DOT text; SVG or PNG drawn by Graphviz's `dot` program through the graphviz binding,
    from the same model. To stdout, or `-o FILE`; a PNG is never written to a terminal."""
    known = specs()
    if args.form not in known:
        raise CliError(f"no form {args.form!r}: one of {', '.join(known)}")
    spec = known[args.form]
    args.format = _diagram_format(args)
    if args.format == "png" and args.output is None and sys.stdout.isatty():
        raise CliError("a PNG is binary and this is a terminal: give -o FILE.png (or redirect to a file)")
    if args.format in ("mermaid", "dot"):
        data = (
            mermaid(spec, args.language) if args.format == "mermaid" else dot(spec, args.language)
        ).encode()
    else:
        if shutil.which("dot") is None:
            raise CliError(
                f"--format {args.format} needs Graphviz's `dot` program (Debian: apt-get install graphviz; "
                "scripts/_env.sh installs it where it can); --format mermaid needs nothing"
            )
        data = render(spec, args.language, args.format)
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        Path(args.output).write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or type(exc).__name__}") from None
    print(f"wrote {args.output} ({args.format}, {len(data):,} bytes)", file=sys.stderr)
    return 0


def cmd_flows_preview(settings: Settings, args: argparse.Namespace) -> int:
    """One static HTML page with every message, as Telegram bubbles, for review."""
    known = specs()
    if args.form is not None and args.form not in known:
        raise CliError(f"no form {args.form!r}: one of {', '.join(known)}")
    languages = (args.language,) if args.language else texts.LANGUAGES
    text = page([args.form] if args.form else None, languages)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or type(exc).__name__}") from None
    print(f"wrote {args.output}: open it in a browser", file=sys.stderr)
    return 0


COMMANDS = {
    ("flows", "test"): cmd_flows_test,
    ("flows", "record"): cmd_flows_record,
    ("flows", "diagram"): cmd_flows_diagram,
    ("flows", "coverage"): cmd_flows_coverage,
    ("flows", "preview"): cmd_flows_preview,
}
