"""Heading paths of DOCX, ODT, HTML and Markdown: each passage located at the headings above it
("Бюджет › Командировки"), so a source can say which section it comes from."""

from __future__ import annotations

import re
from typing import Any

from docassist.pipelines.documents.locations import Location, Part

_MAX_TITLE = 120
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


class Sections:
    """Lines collected under the heading path they sit in; a heading starts a new part."""

    def __init__(self, part_sep: str) -> None:
        self.part_sep = part_sep
        self.path: list[str] = []
        self.lines: list[str] = []
        self.out: list[Part] = []

    def _flush(self) -> None:
        if self.lines:
            location = Location(section=" › ".join(self.path)) if self.path else None
            self.out.append(Part("\n".join(self.lines), location, sep=self.part_sep))
        self.lines = []

    def heading(self, level: int, title: str) -> None:
        self._flush()
        title = " ".join(title.split())[:_MAX_TITLE]
        self.path = [*self.path[: max(0, level - 1)], title]
        self.lines = [title]

    def line(self, text: str) -> None:
        self.lines.append(text)

    def parts(self) -> list[Part]:
        self._flush()
        return self.out


def docx_parts(document: object) -> list[Part]:
    """A Word document's paragraphs under their headings (styles "Title", "Heading 1" …), then its
    tables' rows, one line each, as the text has always been written."""
    sections = Sections("\n")
    for paragraph in document.paragraphs:  # type: ignore[attr-defined]
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        level = 1 if style == "Title" else int(style[8:]) if re.fullmatch(r"Heading [1-9]", style) else 0
        if level and paragraph.text.strip():
            sections.heading(level, paragraph.text)
            sections.lines = [paragraph.text]
        else:
            sections.line(paragraph.text)
    parts = sections.parts()
    for table in document.tables:  # type: ignore[attr-defined]
        for row in table.rows:
            parts.append(Part(" | ".join(cell.text for cell in row.cells), sep="\n"))
    return parts


# Where a heading's text begins, in the joined text: private-use characters and its number. They
# can hardly occur in a document, and normalisation drops any that would (category Co).
_MARK = re.compile("\ue000([0-9]+)\ue001")


def html_parts(root: Any) -> list[Part]:
    """A parsed HTML document's visible text (as `markup_text` writes it) split at its h1–h6."""
    titles = []
    for i, element in enumerate(root.xpath("//h1|//h2|//h3|//h4|//h5|//h6")):
        titles.append((int(element.tag[1]), element.text_content()))
        element.text = f"\ue000{i}\ue001" + (element.text or "")
    sections = Sections("\n")
    first, *rest = _MARK.split("\n".join(root.itertext()))
    sections.line(first)
    for number, body in zip(rest[::2], rest[1::2], strict=True):
        level, title = titles[int(number)]
        if title.strip():
            sections.heading(level, title)
            sections.lines = [body]
        else:
            sections.line(body)
    return sections.parts()


def markdown_parts(text: str) -> list[Part]:
    """Markdown split at its `#` headings (not those inside fenced code), a blank line before each."""
    sections = Sections("\n\n")
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _MD_HEADING.match(line)
        if match:
            sections.heading(len(match.group(1)), match.group(2))
            sections.lines = [line]  # the text keeps its `#` marks, as the file has them
        else:
            sections.line(line)
    return sections.parts()
