"""OpenDocument text, spreadsheets and presentations (odfpy): ODT paragraphs, headings, lists and
tables in document order; ODS sheets as rows with their headers (`tables.RowWriter`); ODP slides as
PPTX ones are written (`slides.write_slides`)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from docassist.pipelines.documents.formats.headings import Sections
from docassist.pipelines.documents.formats.slides import one_line, write_slides
from docassist.pipelines.documents.formats.tables import RowWriter
from docassist.pipelines.documents.locations import Part

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits

_MAX_REPEAT = 1024  # a non-empty cell or row "repeated" more often than this is a trap, not a table


def _elements(node: Any) -> Iterator[Any]:
    for child in node.childNodes:
        if child.nodeType == child.ELEMENT_NODE:
            yield child


def _repeat(element: Any, attribute: str) -> int:
    from odf.namespaces import TABLENS

    try:
        return max(1, int(element.attributes.get((TABLENS, attribute), 1)))
    except ValueError:
        return 1


def _cell_text(cell: Any) -> str:
    from odf import teletype
    from odf.namespaces import TEXTNS

    return one_line(" ".join(teletype.extractText(p) for p in _elements(cell) if p.qname[0] == TEXTNS))


def _rows(table: Any) -> Iterator[tuple[list[str], int]]:
    """Each row's cells and how often it repeats, header and grouped rows included."""
    from odf.namespaces import TABLENS

    for child in _elements(table):
        if child.qname == (TABLENS, "table-row"):
            cells: list[str] = []
            for cell in _elements(child):
                if cell.qname[1] in ("table-cell", "covered-table-cell"):
                    text, n = _cell_text(cell), _repeat(cell, "number-columns-repeated")
                    if text:
                        cells += [text] * min(n, _MAX_REPEAT)
                    elif n < _MAX_REPEAT:  # empty cells before later ones; more is padding to the sheet's edge
                        cells += [""] * n
            yield cells, _repeat(child, "number-rows-repeated")
        elif child.qname[0] == TABLENS:  # table-header-rows, table-rows, table-row-group
            yield from _rows(child)


def _blocks(node: Any, skip: tuple[tuple[str, str], ...] = ()) -> Iterator[str]:
    """Paragraphs, headings and table rows below `node`, in document order."""
    from odf import teletype
    from odf.namespaces import TABLENS, TEXTNS

    for child in _elements(node):
        if child.qname in skip:
            continue
        if child.qname in ((TEXTNS, "p"), (TEXTNS, "h")):
            yield teletype.extractText(child)
        elif child.qname == (TABLENS, "table"):
            for cells, _ in _rows(child):
                if any(cells):
                    yield " | ".join(cells)
        else:
            yield from _blocks(child, skip)


def _odt_blocks(node: Any, sections: Sections) -> None:
    """An ODT's blocks in document order, as `_blocks` reads them, each heading starting a section."""
    from odf import teletype
    from odf.namespaces import TEXTNS

    for child in _elements(node):
        if child.qname == (TEXTNS, "h") and teletype.extractText(child).strip():
            try:
                level = int(child.attributes.get((TEXTNS, "outline-level"), 1))
            except ValueError:
                level = 1
            text = teletype.extractText(child)
            sections.heading(level, text)
            sections.lines = [text]
        elif child.qname in ((TEXTNS, "p"), (TEXTNS, "h")) or child.qname[1] == "table":
            for block in _blocks_of(child):
                sections.line(block)
        else:
            _odt_blocks(child, sections)


def _blocks_of(element: Any) -> Iterator[str]:
    """`_blocks` of one element rather than of its children."""
    from odf import teletype
    from odf.namespaces import TABLENS, TEXTNS

    if element.qname in ((TEXTNS, "p"), (TEXTNS, "h")):
        yield teletype.extractText(element)
    elif element.qname == (TABLENS, "table"):
        for cells, _ in _rows(element):
            if any(cells):
                yield " | ".join(cells)


def odf_text(data: bytes, limits: ExtractLimits, ext: str) -> str | list[Part]:
    from odf.namespaces import DRAWNS, PRESENTATIONNS, TABLENS
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    if ext == ".ods":
        out = RowWriter(limits, "ODS")
        for table in _elements(document.spreadsheet):
            if table.qname != (TABLENS, "table"):
                continue
            out.sheet(str(table.attributes.get((TABLENS, "name"), "")))
            number = 0
            for cells, repeat in _rows(table):
                for _ in range(min(repeat, _MAX_REPEAT) if any(cells) else 0):
                    number += 1
                    out.row(cells, number)
                if not any(cells):
                    number += min(repeat, _MAX_REPEAT)
        return out.parts
    if ext == ".odp":
        slides = []
        for page in _elements(document.presentation):
            if page.qname != (DRAWNS, "page"):
                continue
            title, body, notes = "", [], ""
            for child in _elements(page):
                kind = child.attributes.get((PRESENTATIONNS, "class"))
                if child.qname == (PRESENTATIONNS, "notes"):
                    notes = "\n".join(_blocks(child))
                elif kind == "title" and not title:
                    title = one_line(" ".join(_blocks(child)))
                else:
                    body += list(_blocks(child))
            slides.append((title, body, notes))
        return write_slides(slides)
    sections = Sections("\n")
    _odt_blocks(document.text, sections)
    return sections.parts()
