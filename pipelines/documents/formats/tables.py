"""Spreadsheets and delimited text: every row kept with its header.

A row read alone (`Март; Самара; 612000`) means nothing once it is cut into a chunk far from its
header, so each row is written as one line of `header: value` pairs — `Месяц: Март; Город: Самара;
Выручка, руб.: 612000` — and a search for the revenue in Samara finds it. Rows are counted across
the document's sheets against `MAX_SHEET_ROWS`, checked as each row is read.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import TYPE_CHECKING

from docassist.pipelines.documents.locations import Location, Part
from docassist.pipelines.errors import TooManyRows

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits

_DELIMITERS = (";", ",", "\t", "|")
_SNIFF_LINES = 50


def cell_text(value: object) -> str:
    """A cell as people read it: whole numbers without `.0`, dates without a midnight time, one line."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())


class RowWriter:
    """Collects sheets of rows as parts located at their sheet and row; the first non-empty row of
    a sheet is its header. Sheets are apart by a blank line, rows one to a line."""

    def __init__(self, limits: ExtractLimits, kind: str) -> None:
        self.limits, self.kind = limits, kind
        self.parts: list[Part] = []
        self.rows = 0
        self.chars = 0
        self.header: list[str] | None = None
        self.name: str | None = None
        self.sep = "\n\n"

    def sheet(self, name: str) -> None:
        self.name = name.strip() or None
        self.sep = "\n\n"
        if self.name:
            self._add(self.name, Location(sheet=self.name))
        self.header = None

    def _add(self, line: str, location: Location | None) -> None:
        self.parts.append(Part(line, location, sep=self.sep))
        self.sep = "\n"

    def row(self, values: Iterable[object], number: int | None = None) -> None:
        cells = [cell_text(v) for v in values]
        if not any(cells):
            return
        self.rows += 1
        if self.rows > self.limits.max_sheet_rows:
            raise TooManyRows(
                f"the {self.kind} has more than {self.limits.max_sheet_rows:,} rows; MAX_SHEET_ROWS allows "
                f"{self.limits.max_sheet_rows:,}",
                limit=self.limits.max_sheet_rows,
            )
        if self.header is None:
            self.header = cells
            line = " | ".join(c for c in cells if c)
        else:
            line = "; ".join(f"{h}: {v}" if h else v for h, v in zip_longest(self.header, cells, fillvalue="") if v)
        self.chars += len(line) + 1
        if self.chars <= self.limits.max_document_chars * 2:  # far past the text limit: the check after says so
            rows = str(number) if number is not None else None
            self._add(line, Location(sheet=self.name, rows=rows) if self.name or rows else None)


def xlsx_text(data: bytes, limits: ExtractLimits) -> list[Part]:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    out = RowWriter(limits, "XLSX")
    try:
        for sheet in book.worksheets:
            out.sheet(sheet.title)
            if hasattr(sheet, "reset_dimensions"):  # the declared size can be A1:XFD1048576: read the rows there are
                sheet.reset_dimensions()
            for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
                out.row(row, number)
    finally:
        book.close()
    return out.parts


def _delimiter(lines: Sequence[str], preferred: str) -> str:
    """The delimiter that splits the first lines into the same number of fields (two or more) most
    consistently; among equals, the one with more fields, then `preferred`."""
    best, best_score = preferred, (0.0, 0, False)
    for d in _DELIMITERS:
        counts = [len(r) for r in csv.reader(lines, delimiter=d)]
        if not counts:
            continue
        width, n = Counter(counts).most_common(1)[0]
        if width < 2:
            continue
        score = (n / len(counts), width, d == preferred)
        if score > best_score:
            best, best_score = d, score
    return best


def csv_text(data: bytes, limits: ExtractLimits, ext: str) -> list[Part]:
    from docassist.pipelines.documents.formats.plain import decode_text

    text = decode_text(data)
    sample = [line for line in text.splitlines()[:_SNIFF_LINES] if line.strip()]
    delimiter = _delimiter(sample, "\t" if ext == ".tsv" else ";")
    out = RowWriter(limits, "TSV" if ext == ".tsv" else "CSV")
    for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1):
        out.row(row, number)
    return out.parts
