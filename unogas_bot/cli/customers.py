"""`unogas-bot customers import|demo`: the customer registry (the data printed on the bills)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from typing import TextIO

from storage.db import Database
from unogas_bot.cli.common import CliError, add_operator_argument, operator_name, with_database
from unogas_bot.config import Settings
from unogas_bot.domain import CustomerRecord
from unogas_bot.rules import names
from unogas_bot.rules.replies import BUSINESS
from unogas_bot.service import customers
from unogas_bot.service.support import acting_operator


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    customers = sub.add_parser("customers", help="the customer registry (the data printed on the bills)")
    csub = customers.add_subparsers(dest="action", required=True)
    imp = csub.add_parser("import", help="load customer records from a CSV file")
    imp.add_argument("file", help="UTF-8 CSV: customer_code,kind,first_name,last_name,company_name,tax_code")
    imp.add_argument(
        "--correct",
        action="store_true",
        help="apply rows that would otherwise be refused because their code is a registry customer's with "
        "another printed code or another holder: a deliberate correction, audited with the operator",
    )
    add_operator_argument(imp)
    demo = csub.add_parser("demo", help="load a few demo customers and print them")
    demo.add_argument(
        "--skip-if-real",
        action="store_true",
        help="load nothing when the registry holds other customers (a real registry stays clean)",
    )


def _describe(record: CustomerRecord) -> str:
    who = names.holder(record.kind, record.first_name, record.last_name, record.company_name)
    kind = "azienda" if record.kind == BUSINESS else "persona"
    return f"  {record.customer_code:<12} {kind:<8} {who:<28} {record.tax_code}"


def _readable(path: str) -> None:
    """Refuse, in one line, a file that cannot be read, before the database is touched."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{path} is a directory: name the CSV file inside it") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None


# The import names a refused value as "<column>: <rule's reason>" ("tax code: bad_checksum"): stable, but a
# code an operator has to look up. These are the sentences printed instead; a reason not listed here (a
# new rule) is printed as it comes, so nothing is ever hidden.
_WHAT = {
    "customer code": "the customer code",
    "first name": "the first name",
    "last name": "the last name",
    "company name": "the company name",
    "tax code": "the tax code",
}
_SENTENCES = {
    "empty": "{what} is empty",
    "bad_chars": "{what} has characters it cannot have",
    "too_short": "{what} is too short",
    "too_long": "{what} is too long",
    "no_digit": "{what} has no digit",
    "no_letter": "{what} has no letter",
    "digits": "{what} has digits in it",
    "too_few_letters": "{what} has too few letters",
    "bad_length": "the codice fiscale of a person must have 16 characters",
    "bad_length_business": "a business needs a codice fiscale of 16 characters or a partita IVA of 11 digits",
    "bad_format": "the codice fiscale does not follow its pattern of letters and digits",
    "bad_date": "the birth date inside the codice fiscale does not exist",
    "bad_checksum": "the check character of the codice fiscale is wrong",
    "vat_for_person": "a person needs a codice fiscale, not a partita IVA",
    "vat_bad_format": "the partita IVA is not valid (11 digits, a known tax office)",
    "vat_bad_checksum": "the check digit of the partita IVA is wrong",
}


def readable_reason(reason: str) -> str:
    """An import reason as a sentence for the operator: "tax code: bad_checksum" -> "the check character of
    the codice fiscale is wrong". Anything else (already a sentence, or a reason not known here) as it is."""
    column, sep, why = reason.partition(": ")
    if not sep or column not in _WHAT or why not in _SENTENCES:
        return reason
    return _SENTENCES[why].format(what=_WHAT[column])


class ImportProgress:
    """Rows read and rate while a file is imported, on stderr: one line rewritten in place on a terminal,
    a line every `EVERY` seconds when piped (a log stays readable)."""

    EVERY = 5.0

    def __init__(self, stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.clock = stream, clock
        self.started = self.last = clock()
        self.live = stream.isatty()

    def __call__(self, rows: int) -> None:
        now = self.clock()
        if not self.live and now - self.last < self.EVERY:
            return
        self.last = now
        rate = rows / max(now - self.started, 1e-9)
        line = f"{rows:,} rows read ({rate:,.0f} rows/s)"
        print("\r" + line if self.live else line, end="" if self.live else "\n", file=self.stream, flush=True)

    def done(self) -> None:
        if self.live:
            print(file=self.stream, flush=True)  # leave the last count on its own line


def cmd_customers_import(settings: Settings, args: argparse.Namespace) -> int:
    _readable(args.file)
    operator = operator_name(args) if args.correct else None  # a correction is audited with its operator

    async def work(db: Database) -> int:
        progress = ImportProgress()
        try:
            with acting_operator(operator) if operator else contextlib.nullcontext():
                result = await customers.import_customers(
                    db, args.file, progress=progress, corrections=args.correct
                )
        except customers.ImportRejected as rejected:
            progress.done()
            for line, reason in rejected.errors:
                print(f"line {line}: {readable_reason(reason)}", file=sys.stderr)
            unlisted = rejected.total - len(rejected.errors)
            if unlisted:
                print(f"... and {unlisted} more", file=sys.stderr)
            raise CliError(f"{rejected.total} error(s) in {args.file}: nothing imported") from None
        progress.done()
        print(f"{result.rows} rows read: {result.inserted} customers added, {result.updated} updated")
        return 0

    return with_database(settings, work)


def cmd_customers_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Load and print the demo customers. run.sh and the CLI share one default database, so run.sh passes
    `--skip-if-real`: made-up records must never be mixed into (or overwrite) a real registry."""

    async def work(db: Database) -> int:
        records, others = await customers.load_demo_customers(db, skip_if_real=args.skip_if_real)
        if others:
            print(f"the registry holds {others} other customer(s): demo customers not loaded")
            return 0
        print("Demo customers (type these in the conversation):")
        for record in records:
            print(_describe(record))
        return 0

    return with_database(settings, work)


COMMANDS = {("customers", "import"): cmd_customers_import, ("customers", "demo"): cmd_customers_demo}
