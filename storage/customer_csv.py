"""Reading the customer registry CSV exported by the billing system.

The file is UTF-8 (a BOM is accepted) with the header ``customer_code,kind,first_name,last_name,
company_name,tax_code``. An import is all or nothing: the whole file is checked first and any bad row
rejects it, so the registry never holds half a file. Error messages are short English texts for the
operators; line numbers are those an editor shows (the header is line 1).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from storage.models import BUSINESS, CUSTOMER_KINDS, PERSON
from storage.registry import CustomerRecord, CustomerRegistry, name_key
from unogas_bot import validation

HEADER: tuple[str, ...] = ("customer_code", "kind", "first_name", "last_name", "company_name", "tax_code")

# Keys used for malformed rows, like csv.DictReader's restkey: a row with too many fields gets the extra
# values under EXTRA; a missing field is None.
EXTRA = None


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


class ImportRejected(Exception):
    """The file has errors, so nothing was imported. ``errors`` lists (line number, reason)."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        first = f"; first: line {errors[0][0]}: {errors[0][1]}" if errors else ""
        super().__init__(f"{len(errors)} error(s){first}")
        self.errors = errors


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
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CsvFormatError(number, "the line is not valid UTF-8") from None


def iter_rows(path: str | Path) -> Iterator[tuple[int, dict[str | None, str | list[str] | None]]]:
    """Stream the data rows as (line number, row dict), checking the header first.

    The dict has one entry per header column; a missing field is None and surplus fields are a list under
    the key ``EXTRA`` (like csv.DictReader). Blank lines are skipped. Raises ``CsvFormatError`` for a wrong
    header, bytes that are not UTF-8 or broken quoting.
    """
    with open(path, "rb") as handle:
        reader = csv.reader(_decoded_lines(handle), strict=True)
        last_line = 0  # physical line where the previous record ended (quoted fields may span lines)
        try:
            header = next(reader, None)
            if header is None:
                raise CsvFormatError(1, "the file is empty: expected the header " + ",".join(HEADER))
            if tuple(name.strip() for name in header) != HEADER:
                raise CsvFormatError(1, "wrong header: expected " + ",".join(HEADER))
            last_line = reader.line_num
            for fields in reader:
                line = last_line + 1
                last_line = reader.line_num
                if not any(field.strip() for field in fields):
                    continue
                row: dict[str | None, str | list[str] | None] = dict(zip(HEADER, fields, strict=False))
                for name in HEADER[len(fields) :]:
                    row[name] = None
                if len(fields) > len(HEADER):
                    row[EXTRA] = fields[len(HEADER) :]
                yield line, row
        except csv.Error as exc:
            raise CsvFormatError(last_line + 1, f"malformed CSV: {exc}") from None


def _explain(label: str, exc: validation.Invalid) -> RowError:
    # "tax_code.bad_checksum" -> "tax code: bad_checksum"
    return RowError(f"{label}: {exc.reason.split('.', 1)[-1]}")


def _field(row: dict[str | None, str | list[str] | None], name: str) -> str | None:
    value = row.get(name)
    if isinstance(value, list):  # only under EXTRA; never a named column
        return None
    value = (value or "").strip()
    return value or None


def validate_row(row: dict[str | None, str | list[str] | None]) -> CustomerRecord:
    """Turn one CSV row into a normalised ``CustomerRecord``; raises ``RowError`` with the first problem."""
    if row.get(EXTRA):
        raise RowError(f"too many fields: expected {len(HEADER)}")
    if any(row.get(name) is None for name in HEADER):
        raise RowError(f"too few fields: expected {len(HEADER)}")

    raw_code = _field(row, "customer_code")
    if raw_code is None:
        raise RowError("customer_code is missing")
    try:
        code = validation.customer_code(raw_code)
    except validation.Invalid as exc:
        raise _explain("customer code", exc) from None

    kind = (_field(row, "kind") or "").lower()
    if kind not in CUSTOMER_KINDS:
        raise RowError("kind must be person or business")

    first, last, company = _field(row, "first_name"), _field(row, "last_name"), _field(row, "company_name")
    if kind == PERSON:
        if first is None or last is None:
            raise RowError("a person needs first_name and last_name")
        if company is not None:
            raise RowError("a person must not have a company_name")
        try:
            first = validation.person_name(first)
        except validation.Invalid as exc:
            raise _explain("first name", exc) from None
        try:
            last = validation.person_name(last)
        except validation.Invalid as exc:
            raise _explain("last name", exc) from None
    else:
        if company is None or first is not None or last is not None:
            raise RowError("a business needs company_name and no first/last name")
        try:
            company = validation.company_name(company)
        except validation.Invalid as exc:
            raise _explain("company name", exc) from None

    raw_tax = _field(row, "tax_code")
    if raw_tax is None:
        raise RowError("tax_code is missing")
    try:
        tax = validation.tax_code(raw_tax, kind)
    except validation.Invalid as exc:
        raise _explain("tax code", exc) from None

    # The matching key must be computable, or the customer could never be recognised.
    try:
        key = name_key(kind, first, last, company)
    except ValueError as exc:
        raise RowError(f"name cannot be matched: {exc}") from None
    if not key.replace("|", ""):
        raise RowError("name cannot be matched: no letters")

    return CustomerRecord(
        customer_code=code,
        kind=kind,
        first_name=first if kind == PERSON else None,
        last_name=last if kind == PERSON else None,
        company_name=company if kind == BUSINESS else None,
        tax_code=tax,
    )


# Duplicate detection in constant memory: a bitmap of hashed customer codes (8 MiB, whatever the file's
# size). A code whose bit is already set is only a suspect (two codes may share a bit); the suspects, a
# small set, are confirmed by a second, cheap read of the file.
_SEEN_BITS = 1 << 26


def check_file(path: str | Path) -> tuple[int, list[tuple[int, str]]]:
    """Check the whole file without importing: (number of data rows, [(line number, reason), ...]).

    Duplicate customer codes are reported at the later line, naming the earlier one. A file-level problem
    (wrong header, not UTF-8, broken quoting) is reported as one error at the line where it was noticed.
    Errors come in line order.
    """
    rows = 0
    errors: list[tuple[int, str]] = []
    seen = bytearray(_SEEN_BITS // 8)
    suspects: set[str] = set()
    format_error: CsvFormatError | None = None
    try:
        for line, row in iter_rows(path):
            rows += 1
            try:
                record = validate_row(row)
            except RowError as exc:
                errors.append((line, exc.reason))
                continue
            bit = hash(record.customer_code) & (_SEEN_BITS - 1)
            if seen[bit >> 3] & (1 << (bit & 7)):
                suspects.add(record.customer_code)
            else:
                seen[bit >> 3] |= 1 << (bit & 7)
    except CsvFormatError as exc:
        format_error = exc
    del seen
    if suspects:
        errors += _duplicates(path, suspects)
        errors.sort(key=lambda error: error[0])  # one error per line at most: this is the file's order
    if format_error is not None:
        errors.append((format_error.line, format_error.reason))
    return rows, errors


def _duplicates(path: str | Path, suspects: set[str]) -> list[tuple[int, str]]:
    """The duplicate-code errors among valid rows whose code is in `suspects`."""
    errors: list[tuple[int, str]] = []
    first_seen: dict[str, int] = {}
    try:
        for line, row in iter_rows(path):
            raw = _field(row, "customer_code")
            try:
                code = validation.customer_code(raw) if raw else None
            except validation.Invalid:
                continue
            if code not in suspects:
                continue
            try:
                validate_row(row)  # an invalid row is reported for what is wrong with it, not as a duplicate
            except RowError:
                continue
            earlier = first_seen.setdefault(code, line)
            if earlier != line:
                errors.append((line, f"duplicate customer code {code} (first on line {earlier})"))
    except CsvFormatError:
        pass  # the first read reported it; the rows before it have been seen
    return errors


def _records(path: str | Path) -> Iterator[CustomerRecord]:
    for line, row in iter_rows(path):
        try:
            yield validate_row(row)
        except RowError as exc:
            # The file changed after check_file: abort, the transaction rolls back.
            raise ImportRejected([(line, exc.reason)]) from None


async def import_file(
    path: str | Path, registry: CustomerRegistry, *, batch_size: int = 5000
) -> ImportResult:
    """Check the file, then import it in one transaction; on any error raise ``ImportRejected``.

    Nothing is imported when the file has a single bad row. The file is read twice, streaming both times.
    """
    rows, errors = await asyncio.to_thread(check_file, path)
    if errors:
        raise ImportRejected(errors)
    try:
        inserted, updated = await registry.upsert_many(_records(path), batch_size=batch_size)
    except CsvFormatError as exc:
        raise ImportRejected([(exc.line, exc.reason)]) from None
    return ImportResult(rows=rows, inserted=inserted, updated=updated)
