"""Where each passage of a document sits: its PDF page, slide, sheet rows, chapter or heading.

A reader returns its text as `Part`s, each with the `Location` it came from; `join_parts` joins
them into the document's normalised text and keeps, for each, the span it covers (a `Section`).
A chunk cut from that text is mapped back to the sections it overlaps (`Locator.place`), so a
search hit or an answer's source can say "page 3" or "sheet «Продажи», rows 2-4".

A location is typed wherever the pipelines pass it; it becomes JSON — an object with only the
fields it has, `{"page": 3}` — at the edges alone: the vector store's payload (`as_dict`,
`from_dict`), and pydantic models (events, stored messages, responses), which read and write that
same object through the schema `Location` declares.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, NamedTuple, get_args, get_type_hints

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


@dataclass(frozen=True)
class Location:
    """One place in a document; only the fields its format has are set."""

    page: int | None = None
    page_end: int | None = None
    slide: int | None = None
    slide_end: int | None = None
    title: str | None = None
    sheet: str | None = None
    rows: str | None = None  # "5" or "2-4": spreadsheet row numbers, the header row being 1
    chapter: str | None = None
    section: str | None = None  # the heading path, "Budget › Travel"

    def as_dict(self) -> dict[str, int | str]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @staticmethod
    def from_dict(value: object) -> Location | None:
        """A location read back as JSON, checked field by field (a field of the wrong type is left
        out); None for anything else, as for documents ingested before locations were kept."""
        if not isinstance(value, dict):
            return None
        location = Location(**{k: v for k, v in value.items() if k in _FIELDS and _fits(k, v)})
        return location if location.as_dict() else None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """In a pydantic model a location reads and writes the object `as_dict` makes."""
        return core_schema.no_info_plain_validator_function(
            _validated, serialization=core_schema.plain_serializer_function_ser_schema(Location.as_dict)
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        types = {name: "integer" if name in _NUMBERS else "string" for name in _FIELDS}
        return {
            "type": "object",
            "title": "Location",
            "description": "only the fields its format has",
            "properties": {name: {"type": kind} for name, kind in types.items()},
            "additionalProperties": False,
        }


_FIELDS = tuple(f.name for f in fields(Location))
_NUMBERS = frozenset(name for name, hint in get_type_hints(Location).items() if int in get_args(hint))  # others: text


def _fits(name: str, value: object) -> bool:
    if name in _NUMBERS:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def _validated(value: object) -> Location:
    if isinstance(value, Location):
        return value
    location = Location.from_dict(value)
    if location is None:
        raise ValueError(f"a location is an object of some of {', '.join(_FIELDS)}")
    return location


Place = tuple[int, Location]  # a section a chunk spans: its offset in the chunk's text, and its location


@dataclass(frozen=True)
class Part:
    """A piece of a document's text, where it came from, and the separator written before it.
    `ocr_page` marks a part whose text is still to be read by OCR (a PDF page or image frame, 0-based)."""

    text: str
    location: Location | None = None
    sep: str = "\n\n"
    ocr_page: int | None = None


@dataclass(frozen=True)
class Section:
    """The span [start, end) of the normalised text that came from `location`."""

    start: int
    end: int
    location: Location


class OcrWord(NamedTuple):
    """A word Tesseract read, and its box as ten-thousandths of the page's width and height (so
    the page drawn at any size can mark it), with the number of its line on the page."""

    text: str
    left: int
    top: int
    right: int
    bottom: int
    line: int


PageWords = dict[int, tuple[OcrWord, ...]]  # a scanned PDF's words by page number (1-based)


@dataclass(frozen=True)
class Extracted:
    """A document's normalised text and where its sections sit (empty for formats without
    locations); for a scanned PDF, the words OCR read on each page, where they sit on it (what marks
    a quote on the page)."""

    text: str
    sections: tuple[Section, ...] = ()
    ocr_pages: int = 0
    page_words: PageWords = field(default_factory=dict)


def join_parts(parts: Iterable[Part], normalize: Callable[[str], str]) -> tuple[str, tuple[Section, ...]]:
    """Normalise each part on its own and join them, recording each located part's span. Parts are
    normalised one by one so offsets stay true; blank parts are dropped, as whole-text
    normalisation would collapse them."""
    out: list[str] = []
    sections: list[Section] = []
    length = 0
    for part in parts:
        text = normalize(part.text)
        if not text:
            continue
        if out:
            out.append(part.sep)
            length += len(part.sep)
        if part.location is not None:
            sections.append(Section(length, length + len(text), part.location))
        out.append(text)
        length += len(text)
    return "".join(out), tuple(sections)


def _rows(rows: str) -> tuple[int, int]:
    first, _, last = rows.partition("-")
    return int(first), int(last or first)


def merge(locations: Sequence[Location]) -> Location | None:
    """One location for a chunk that spans several: the first, widened to the last page or slide,
    or to the last row of the same sheet."""
    if not locations:
        return None
    first = locations[0]
    if first.page is not None:
        last = max((loc.page_end or loc.page or 0) for loc in locations)
        return replace(first, page_end=last) if last > first.page else first
    if first.slide is not None:
        last = max((loc.slide_end or loc.slide or 0) for loc in locations)
        return replace(first, slide_end=last) if last > first.slide else first
    if first.sheet is not None or first.rows is not None:
        spans = [_rows(loc.rows) for loc in locations if loc.sheet == first.sheet and loc.rows]
        if spans:
            low, high = min(s[0] for s in spans), max(s[1] for s in spans)
            return replace(first, rows=str(low) if low == high else f"{low}-{high}")
    return first


def split_units(text: str, sections: Sequence[Section]) -> list[str]:
    """The stretches of `text` to be chunked each on its own: one per sheet of a workbook, so no
    chunk holds rows of two sheets (its place could name only one); the whole text otherwise.
    Consecutive sections of one sheet form its stretch; text between stretches, when not blank,
    is a stretch of its own, so nothing is left out."""
    if not any(section.location.sheet is not None for section in sections):
        return [text] if text else []
    spans: list[list[int]] = []
    sheet: object = object()
    for section in sections:
        if spans and section.location.sheet == sheet:
            spans[-1][1] = section.end
        else:
            spans.append([section.start, section.end])
            sheet = section.location.sheet
    units, at = [], 0
    for start, end in spans:
        if text[at:start].strip():
            units.append(text[at:start])
        units.append(text[start:end])
        at = end
    if text[at:].strip():
        units.append(text[at:])
    return units


class Locator:
    """Maps chunks, in the order the splitter cut them, to the sections they overlap."""

    def __init__(self, text: str, sections: Sequence[Section]) -> None:
        self.text, self.sections = text, sections
        self.starts = [s.start for s in sections]
        self.cursor = 0

    def place(self, chunk: str) -> tuple[Location | None, list[Place]]:
        """The chunk's location, and — when it spans several sections — each section's offset in
        the chunk with its location, so a quote of the chunk can name its own page."""
        if not self.sections:
            return None, []
        at = self.text.find(chunk, self.cursor)
        if at < 0:  # the splitter trimmed or rejoined whitespace: find its first words instead
            at = self.text.find(chunk[:40], self.cursor)
        if at < 0:
            return None, []
        self.cursor = at + 1  # chunks overlap: the next one starts after this one's start
        end = at + len(chunk)
        i = max(0, bisect.bisect_right(self.starts, at) - 1)
        found: list[Place] = []
        while i < len(self.sections) and self.sections[i].start < end:
            if self.sections[i].end > at:
                found.append((max(0, self.sections[i].start - at), self.sections[i].location))
            i += 1
        return merge([loc for _, loc in found]), found if len(found) > 1 else []


def within(places: Sequence[Place], start: int, end: int) -> Location | None:
    """Where [start, end) of a chunk sits, given its places (offset in the chunk, location):
    the places it overlaps, merged — a chunk across pages 3–4 quoted on page 4 is page 4."""
    found = [
        loc
        for k, (offset, loc) in enumerate(places)
        if offset < end and (k + 1 == len(places) or places[k + 1][0] > start)
    ]
    return merge(found)
