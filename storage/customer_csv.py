"""Reading the customer registry CSV exported by the billing system.

The file is UTF-8 (a BOM is accepted) with the header ``customer_code,kind,first_name,last_name,
company_name,tax_code``. An import is all or nothing: every row is checked, and any bad row or repeated
customer code rejects the file, so the registry never holds half a file. Error messages are short English
texts for the operators; line numbers are those an editor shows (the header is line 1).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from storage.registry import CustomerRegistry, name_key
from storage.registry_import import StagedRow
from unogas_bot import rules
from unogas_bot.domain import CustomerRecord, customer_code_key
from unogas_bot.rules.replies import BUSINESS, PERSON

HEADER: tuple[str, ...] = ("customer_code", "kind", "first_name", "last_name", "company_name", "tax_code")


class RowError(ValueError):
    """A data row that cannot be imported; ``reason`` is a short English text for operators."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CsvFormatError(ValueError):
    """The file itself is unusable (wrong header, not UTF-8, ...); ``line`` is where it was noticed."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


# A file that is wrong throughout (another export, a shifted column) has an error on every line: the first
# ones say what is wrong, and a list of millions would only fill the operator's screen and this process's
# memory. The rest are counted.
MAX_LISTED_ERRORS = 1000


class ImportRejected(Exception):
    """The file has errors, so nothing was imported. ``errors`` lists (line number, reason), the first
    ``MAX_LISTED_ERRORS`` of them in line order (and a file-level problem last); ``total`` counts them all."""

    def __init__(self, errors: list[tuple[int, str]], total: int | None = None) -> None:
        self.errors = errors
        self.total = len(errors) if total is None else total
        first = f"; first: line {errors[0][0]}: {errors[0][1]}" if errors else ""
        super().__init__(f"{self.total} error(s){first}")


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated


def _decoded_lines(handle: BinaryIO) -> Iterator[str]:
    """The file's lines as text, decoded one by one so a bad byte is reported on its own line."""
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        elif number == 1 and (raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw):
            # LibreOffice's "Unicode" CSV, Excel's "Unicode text": every other byte of a header is a NUL.
            raise CsvFormatError(
                number,
                'the file is UTF-16, not UTF-8: save it as "CSV UTF-8" (Excel, LibreOffice) or convert it '
                "with `iconv -f UTF-16 -t UTF-8 FILE > FILE-utf8.csv`",
            )
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CsvFormatError(number, _not_utf8(raw)) from None


def _not_utf8(raw: bytes) -> str:
    """What a line that is not UTF-8 is told: the encoding it looks like, and how to get UTF-8."""
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        looks = ""
    else:  # what Excel's plain "CSV" and most Italian Windows tools write
        looks = " (it looks like Windows-1252/Latin-1)"
    return (
        f'the line is not valid UTF-8{looks}: save the file as "CSV UTF-8" (Excel, LibreOffice) or '
        "convert it with `iconv -f WINDOWS-1252 -t UTF-8 FILE > FILE-utf8.csv`"
    )


# The separators the header is looked for with: the comma, and the semicolon of an Italian Excel's "CSV".
SEPARATORS = (",", ";")


def _separator(first: str) -> str:
    """The separator the header line uses: the one that splits it into HEADER (names in any case)."""
    for separator in SEPARATORS:
        names = [name.strip().strip('"').strip().lower() for name in first.rstrip("\r\n").split(separator)]
        while len(names) > len(HEADER) and not names[-1]:  # Excel's empty columns right of the data
            names.pop()
        if tuple(names) == HEADER:
            return separator
    found = first.strip()
    found = found if len(found) <= 120 else found[:119] + "…"
    raise CsvFormatError(
        1,
        f"wrong header: found {found!r}; expected {','.join(HEADER)} "
        "(in this order, in any case, separated by commas or semicolons)",
    )


def iter_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Stream the data rows as (line number, fields as read), checking the header first.

    The header's names may be in any case; the separator is the one the header uses, a comma or a
    semicolon. Blank lines are skipped. Raises ``CsvFormatError`` for a wrong header (naming the one
    found), bytes that are not UTF-8 (naming the encoding they look like) or broken quoting.
    """
    with open(path, "rb") as handle:
        lines = _decoded_lines(handle)
        last_line = 0  # physical line where the previous record ended (quoted fields may span lines)
        try:
            first = next(lines, None)
            if first is None:
                raise CsvFormatError(1, "the file is empty: expected the header " + ",".join(HEADER))
            reader = csv.reader(itertools.chain([first], lines), delimiter=_separator(first), strict=True)
            next(reader)  # the header, checked by _separator
            last_line = reader.line_num
            for fields in reader:
                line = last_line + 1
                last_line = reader.line_num
                # The first test settles almost every row; only a row starting empty needs the full one.
                if (fields and fields[0].strip()) or any(value.strip() for value in fields):
                    yield line, fields
        except csv.Error as exc:
            raise CsvFormatError(last_line + 1, f"malformed CSV: {exc}") from None


def _checked(label: str, rule: Callable[..., str], *args: str) -> str:
    """`rule(*args)`, its refusal turned into a ``RowError`` naming the column."""
    try:
        return rule(*args)
    except rules.Invalid as exc:
        # "tax_code.bad_checksum" -> "tax code: bad_checksum"
        raise RowError(f"{label}: {exc.reason.split('.', 1)[-1]}") from None


def staged_row(line: int, fields: Sequence[str]) -> StagedRow:
    """One CSV row as the registry stages it: normalised fields and matching key. Raises ``RowError``
    with the row's first problem.

    Registry files have a million rows, so this is the import's inner loop: the rules' fast paths take
    the usual values, and the checks come in the order that names the most useful problem first.
    """
    if len(fields) != len(HEADER):
        fields = _fields(fields)
    raw_code, raw_kind, first, last, company, raw_tax = (value.strip() for value in fields)
    if not raw_code:
        raise RowError("customer_code is missing")
    code = _checked("customer code", rules.customer_code.validate, raw_code)
    kind = raw_kind.lower()
    if kind == PERSON:
        if not first or not last:
            raise RowError("a person needs first_name and last_name")
        if company:
            raise RowError("a person must not have a company_name")
        first = _checked("first name", rules.names.person_name, first)
        last = _checked("last name", rules.names.person_name, last)
        names = (first, last, None)
    elif kind == BUSINESS:
        if not company or first or last:
            raise RowError("a business needs company_name and no first/last name")
        names = (None, None, _checked("company name", rules.names.company_name, company))
    else:
        raise RowError("kind must be person or business")
    if not raw_tax:
        raise RowError("tax_code is missing")
    tax = _checked("tax code", rules.tax_code.validate, raw_tax, kind)
    # The matching key must be computable, or the customer could never be recognised.
    try:
        key = name_key(kind, *names)
    except ValueError as exc:
        raise RowError(f"name cannot be matched: {exc}") from None
    if not key.replace("|", ""):
        raise RowError("name cannot be matched: no letters")
    return (line, code, customer_code_key(code), kind, *names, tax, key)


def collision_reason(code: str, stored: str, holder: str) -> str:
    """Why a row would merge two customers (see `import_file`), for the operator."""
    fix = "if it is a correction, import with --correct"
    if code == stored:
        return f"customer code {code} belongs to another holder in the registry (another tax code); {fix}"
    other = " and with another holder (another tax code)" if holder else ""
    return f"customer code {code} is {stored} in the registry, printed differently{other}; {fix}"


def _fields(fields: Sequence[str]) -> Sequence[str]:
    """A row of another length than the header's: its first fields when the rest are empty (Excel's empty
    columns right of the data); else a `RowError`, saying so when the line uses the other separator."""
    if len(fields) > len(HEADER):
        if not any(value.strip() for value in fields[len(HEADER) :]):
            return fields[: len(HEADER)]
        raise RowError(f"too many fields: expected {len(HEADER)}")
    for other, header in zip(SEPARATORS, reversed(SEPARATORS), strict=True):
        if len(fields) + sum(value.count(other) for value in fields) >= len(HEADER):
            raise RowError(
                f"too few fields: expected {len(HEADER)} separated by '{header}' as in the header, "
                f"but the line uses '{other}'"
            )
    raise RowError(f"too few fields: expected {len(HEADER)}")


def validate_row(fields: Sequence[str]) -> CustomerRecord:
    """Turn one CSV row into a normalised ``CustomerRecord``; raises ``RowError`` with the first problem."""
    _, code, _, kind, first, last, company, tax, _ = staged_row(0, fields)
    return CustomerRecord(code, kind, first, last, company, tax)


@dataclass
class _Batch:
    rows: int = 0
    staged: list[StagedRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    format_error: CsvFormatError | None = None
    last: bool = False


def _next_batch(rows: Iterator[tuple[int, list[str]]], size: int) -> _Batch:
    """Read and check up to `size` rows (run in a worker thread: it is CPU work)."""
    batch = _Batch()
    try:
        for line, fields in rows:
            batch.rows += 1
            try:
                batch.staged.append(staged_row(line, fields))
            except RowError as exc:
                batch.errors.append((line, exc.reason))
            if batch.rows == size:
                return batch
    except CsvFormatError as exc:
        batch.format_error = exc
    batch.last = True
    return batch


async def import_file(
    path: str | Path,
    registry: CustomerRegistry,
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    corrections: bool = False,
) -> ImportResult:
    """Import the file in one transaction, or raise ``ImportRejected`` listing every problem.

    The file is read once, streaming: each valid row is staged as it is read, and only a file with no bad
    row and no repeated customer code is merged into the registry. Nothing is imported otherwise. Errors
    come in line order, one per line at most; a file-level problem (not UTF-8, broken quoting) comes last,
    at the line where it was noticed, after what the rows before it showed. ``progress``, if given, is told
    the rows read so far after each batch (for a progress display).

    A row whose code's key is a registry customer's with another printed code ("UG1-00234" for
    "UG-100234") or another holder (another tax code) would merge two customers into one: it is refused,
    with its line and reason. With `corrections` such rows are applied as deliberate corrections, each
    audited ("registry_corrected", naming the operator of `storage.accounts.acting_operator`).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    rows = iter_rows(path)
    total = bad_rows = 0
    errors: list[tuple[int, str]] = []  # the first MAX_LISTED_ERRORS bad rows, in line order
    format_error: CsvFormatError | None = None
    try:
        async with registry.importing() as job:
            last = False
            while not last:
                batch = await asyncio.to_thread(_next_batch, rows, batch_size)
                total += batch.rows
                bad_rows += len(batch.errors)
                errors += batch.errors[: MAX_LISTED_ERRORS - len(errors)]
                format_error, last = batch.format_error, batch.last
                await job.add(batch.staged)
                if progress is not None:
                    progress(total)
            repeats, repeated_rows = await job.repeats(MAX_LISTED_ERRORS)
            collisions, colliding_rows = await job.collisions(None if corrections else MAX_LISTED_ERRORS)
            if corrections:
                colliding_rows = 0  # deliberate: applied and audited below
            if bad_rows or repeated_rows or format_error or colliding_rows:
                errors += (
                    (line, f"duplicate customer code {code} (first on line {first})")
                    for line, code, first in repeats
                )
                repeated = {line for line, _code, _first in repeats}
                clashes = [
                    (line, collision_reason(*why)) for line, *why in collisions if line not in repeated
                ]
                colliding_rows -= len(collisions) - len(clashes)  # one error per line: the repeat is told
                errors += clashes
                errors.sort(key=lambda error: error[0])  # one error per line at most: the file's order
                del errors[MAX_LISTED_ERRORS:]
                if format_error is not None:
                    errors.append((format_error.line, format_error.reason))
                count = bad_rows + repeated_rows + colliding_rows + (format_error is not None)
                raise ImportRejected(errors, count)  # leaving the block rolls the staging back
            await job.audit_corrections(collisions)
            inserted, updated = await job.merge()
    finally:
        rows.close()
    return ImportResult(rows=total, inserted=inserted, updated=updated)
