"""`unogas-bot flows test|record|diagram`: flow scripts support staff write and check, and the picture of
every flow (issue 13). The format is in unogas_bot/flows/script.py and the README."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import logging
import shutil
import sys
from pathlib import Path

from unogas_bot.cli.common import CliError
from unogas_bot.cli.console import EndedMidForm, run_console
from unogas_bot.clock import frozen
from unogas_bot.config import Settings
from unogas_bot.flows.diagram import dot, forms, mermaid, render
from unogas_bot.flows.fixtures import ACCOUNTS, DEMO_EMAIL, demo_account
from unogas_bot.flows.runner import DEFAULT_USER, Replayer, find_scripts, report, run_scripts
from unogas_bot.flows.script import DEFAULT_NOW, ScriptError
from unogas_bot.flows.secrets import ANSWER, PASSWORD, SecretBook
from unogas_bot.service.context import Services


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    flows = sub.add_parser("flows", help="flow scripts (replayed as tests) and flow diagrams")
    fsub = flows.add_subparsers(dest="action", required=True)
    test = fsub.add_parser("test", help="replay flow scripts on a throwaway database: PASS or FAIL each")
    test.add_argument("paths", nargs="+", metavar="FILE|DIR", help="scripts, or folders of *.flow files")
    test.add_argument("--update", action="store_true", help="rewrite the bot lines of failing steps")
    record = fsub.add_parser("record", help="chat in the terminal and save the session as a flow script")
    record.add_argument("file", help="the script to write (overwritten)")
    record.add_argument("--language", default="it", choices=("it", "en"), help="the user's language")
    record.add_argument("--user-id", type=int, default=DEFAULT_USER, help="the Telegram user id to play")
    record.add_argument(
        "--accounts",
        default="none",
        choices=ACCOUNTS,
        help="demo: start with the demo customer registered and logged in (# accounts: demo)",
    )
    diagram = fsub.add_parser("diagram", help="draw a flow from its form definition (Mermaid)")
    diagram.add_argument("form", nargs="?", default="registration", help="the form (default: registration)")
    diagram.add_argument("--language", default="it", choices=("it", "en"), help="the language of the labels")
    diagram.add_argument("--format", default="mermaid", choices=("mermaid", "dot", "svg", "png"))
    diagram.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def _quiet(settings: Settings, args: argparse.Namespace) -> None:
    """Each script builds a database and starts a bot: their INFO lines would bury the PASS/FAIL lines."""
    if not args.verbose and settings.log_level is None:
        logging.getLogger().setLevel(logging.WARNING)


def cmd_flows_test(settings: Settings, args: argparse.Namespace) -> int:
    _quiet(settings, args)
    paths = list(find_scripts(args.paths))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise CliError(f"no such flow script: {', '.join(missing)}")
    if not paths:
        raise CliError("no *.flow script found")
    try:
        outcomes = asyncio.run(run_scripts(paths, settings, update=args.update))
    except ScriptError as exc:
        raise CliError(str(exc)) from None
    for outcome in outcomes:
        print(report(outcome, updated=args.update))
    failed = sum(not outcome.passed for outcome in outcomes)
    verb = "updated" if args.update else "failed"
    print(f"{len(outcomes)} script(s): {len(outcomes) - failed} passed, {failed} {verb}")
    return 1 if failed and not args.update else 0


def cmd_flows_record(settings: Settings, args: argparse.Namespace) -> int:
    """The console on a throwaway database with the demo customers (as `flows test` replays it); the
    session goes to the file with every secret masked, right or wrong (a masked input replays as the
    script's own secret, a marked one as a second or a refused one: flows/secrets.py)."""
    _quiet(settings, args)
    path = Path(args.file)
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
        base = replayer.secrets

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

    status = asyncio.run(work())
    path.write_text("\n".join(headers) + "\n" + transcript.getvalue(), encoding="utf-8")
    print(f"saved {path}: replay it with `unogas-bot flows test {path}`", file=sys.stderr)
    return status


def cmd_flows_diagram(settings: Settings, args: argparse.Namespace) -> int:
    """Mermaid or DOT text; SVG or PNG drawn by Graphviz's `dot` program through the graphviz binding,
    from the same model. To stdout, or `-o FILE`; a PNG is never written to a terminal."""
    known = forms()
    if args.form not in known:
        raise CliError(f"no form {args.form!r}: one of {', '.join(known)}")
    form = known[args.form]
    if args.format == "png" and args.output is None and sys.stdout.isatty():
        raise CliError("a PNG is binary and this is a terminal: give -o FILE.png (or redirect to a file)")
    if args.format in ("mermaid", "dot"):
        data = (
            mermaid(form, args.language) if args.format == "mermaid" else dot(form, args.language)
        ).encode()
    else:
        if shutil.which("dot") is None:
            raise CliError(
                f"--format {args.format} needs Graphviz's `dot` program (Debian: apt-get install graphviz; "
                "scripts/_env.sh installs it where it can); --format mermaid needs nothing"
            )
        data = render(form, args.language, args.format)
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


COMMANDS = {
    ("flows", "test"): cmd_flows_test,
    ("flows", "record"): cmd_flows_record,
    ("flows", "diagram"): cmd_flows_diagram,
}
