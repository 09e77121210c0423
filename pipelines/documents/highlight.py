"""A quote marked on the page it came from (`GET /documents/{id}/pages/{n}?highlight=START-END`).

A citation gives its quote's offsets in the document's text; the text was read from the PDF's
text layer (pypdf) or by OCR, then normalised, so the offsets cannot point into the page
directly. The quote is found again on the page instead: in the characters of pdfium's text page
(whose boxes say where each one is drawn), or for a scanned page in the words OCR read at ingest
with their boxes. Both sides are compared as their letters and digits alone, case- and
compatibility-folded (NFKC), so line breaks, hyphenation spaces and ligatures do not matter. A
quote that runs onto the next page is marked where it is: the longest stretch of it found on this
page, when that is a fair part of it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from docassist.pipelines.documents.locations import OcrWord
from docassist.pipelines.errors import InvalidInput

MAX_HIGHLIGHT_CHARS = 5_000  # a quote is a sentence or two; a whole page at most
_MIN_STRETCH = 12  # letters of a quote found on a page, at least, for a part of it to be marked
_FILL = (255, 214, 0, 110)  # translucent yellow: the text stays legible under it
_PAD = 2  # pixels around each marked line
_SPAN = re.compile(r"^(\d{1,9})-(\d{1,9})$")

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the page's size


@dataclass(frozen=True)
class Highlight:
    """The characters [start, end) of the document's text to mark, as a citation gives them."""

    start: int
    end: int

    @staticmethod
    def parse(value: str) -> Highlight:
        found = _SPAN.match(value)
        if found is None:
            raise InvalidInput("highlight is START-END: a quote's offsets in the document's text, as citations give")
        start, end = int(found[1]), int(found[2])
        if not start < end:
            raise InvalidInput(f"highlight {value}: START must be less than END")
        if end - start > MAX_HIGHLIGHT_CHARS:
            raise InvalidInput(f"highlight marks at most {MAX_HIGHLIGHT_CHARS:,} characters", limit=MAX_HIGHLIGHT_CHARS)
        return Highlight(start, end)

    def quote(self, text: str) -> str:
        """The marked characters of the document's text; `InvalidInput` when they lie past its end."""
        if self.end > len(text):
            raise InvalidInput(
                f"highlight {self.start}-{self.end} lies past the end of the document's text ({len(text):,} chars)",
                chars=len(text),
            )
        return text[self.start : self.end]


def _folded(text: str) -> tuple[str, list[int]]:
    """`text`'s letters and digits, NFKC- and case-folded, and where in `text` each one came from."""
    out, origin = [], []
    for i, ch in enumerate(text):
        for folded in unicodedata.normalize("NFKC", ch).casefold():
            if folded.isalnum():
                out.append(folded)
                origin.append(i)
    return "".join(out), origin


def find_quote(page_text: str, quote: str) -> tuple[int, int] | None:
    """[start, end) of `quote` in `page_text`, letters and digits compared alone; else the longest
    stretch of it on the page when a fair part of it; None when the page does not hold it."""
    page, origin = _folded(page_text)
    wanted, _ = _folded(quote)
    if not wanted or not page:
        return None
    at, size = page.find(wanted), len(wanted)
    if at < 0:
        match = SequenceMatcher(None, page, wanted, autojunk=False).find_longest_match(0, len(page), 0, len(wanted))
        if match.size < min(len(wanted), max(_MIN_STRETCH, len(wanted) // 4)):
            return None
        at, size = match.a, match.size
    return origin[at], origin[at + size - 1] + 1


def _lines(boxes: Sequence[Box]) -> list[Box]:
    """Boxes in reading order merged into one per line: a new line starts where a box does not
    overlap the current line's height, or starts left of where the line got to."""
    lines: list[list[float]] = []
    for left, top, right, bottom in boxes:
        line = lines[-1] if lines else None
        middle = (top + bottom) / 2
        if line is not None and line[1] <= middle <= line[3] and left >= line[0] - 1e-3:
            line[0], line[1] = min(line[0], left), min(line[1], top)
            line[2], line[3] = max(line[2], right), max(line[3], bottom)
        else:
            lines.append([left, top, right, bottom])
    return [(a, b, c, d) for a, b, c, d in lines]


def text_layer_boxes(page: Any, quote: str) -> list[Box]:
    """Where `quote` is drawn on a pdfium page with a text layer: one box per line it covers."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        count = textpage.count_chars()
        chars = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(count))
        span = find_quote(chars, quote)
        if span is None:
            return []
        scale = 100_000  # device units per page side: fractions to five places, rotation applied by pdfium
        x, y = ctypes.c_int(), ctypes.c_int()

        def device(px: float, py: float) -> tuple[float, float]:
            pdfium_c.FPDF_PageToDevice(page.raw, 0, 0, scale, scale, 0, px, py, x, y)
            return x.value / scale, y.value / scale

        boxes = []
        for i in range(*span):
            if chars[i].isspace():
                continue
            left, bottom, right, top = textpage.get_charbox(i)
            (x0, y0), (x1, y1) = device(left, top), device(right, bottom)
            if x0 != x1 and y0 != y1:
                boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        return _lines(boxes)
    finally:
        textpage.close()


def ocr_boxes(words: Sequence[OcrWord], quote: str) -> list[Box]:
    """Where `quote` sits on a scanned page, from the words OCR read there: one box per line."""
    if not words:
        return []
    text, owner = "", []
    for n, word in enumerate(words):
        text += word.text + " "
        owner.extend([n] * (len(word.text) + 1))
    span = find_quote(text, quote)
    if span is None:
        return []
    chosen = sorted({owner[i] for i in range(*span)})
    by_line: dict[int, list[OcrWord]] = {}
    for n in chosen:
        by_line.setdefault(words[n].line, []).append(words[n])
    return [
        (
            min(w.left for w in line) / 10_000,
            min(w.top for w in line) / 10_000,
            max(w.right for w in line) / 10_000,
            max(w.bottom for w in line) / 10_000,
        )
        for line in by_line.values()
    ]


def draw_marks(image: Any, boxes: Sequence[Box]) -> Any:
    """`image` (PIL) with a translucent mark over each box."""
    from PIL import Image, ImageDraw

    if not boxes:
        return image
    width, height = image.size
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(overlay)
    for left, top, right, bottom in boxes:
        pen.rectangle(
            (left * width - _PAD, top * height - _PAD, right * width + _PAD, bottom * height + _PAD), fill=_FILL
        )
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
