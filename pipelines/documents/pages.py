"""One page of a stored PDF as a PNG, so a reader sees the page a citation names.

The service renders the page itself (pypdfium2, already used for OCR): the page loads nothing from
elsewhere and needs no PDF viewer in the browser. The PDF is a user's upload and a page may be built
to cost minutes to draw (images that declare 131,000² pixels in a few KB), so a render is bounded
every way it can be costly:

- it runs on a render worker of its own (`ExtractionSandbox.render_page`), a process with the
  extraction workers' memory cap that uploads never use, so renders cannot hold up anyone's upload;
- the worker reads the PDF from the database itself (`StoredPdf`): the service's process never
  holds the file, however many requests wait;
- before anything is drawn the page's images are counted: more declared pixels than
  `MAX_IMAGE_PIXELS`, images together, is refused (`PageTooCostly`) without decoding any of them,
  and so is a rendered size over it (`ImageTooLarge`);
- whatever else makes a page slow (vector art, patterns, annotations) meets `PAGE_RENDER_TIMEOUT_S`,
  past which the worker is killed and replaced and the page refused (`PageTooCostly`).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docassist.pipelines.documents.highlight import Highlight, draw_marks, ocr_boxes, text_layer_boxes
from docassist.pipelines.documents.locations import OcrWord
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.errors import (
    NotFound,
    PageTooCostly,
    UnreadableDocument,
    UnsupportedMediaType,
)

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits

PAGE_DPI = 110  # an A4 page is 909 × 1,286 pixels: legible on a screen, a few hundred KB as PNG
_FORM_DEPTH = 15  # images inside form XObjects nested this deep are counted (pdfium's own default)


@dataclass(frozen=True)
class StoredPdf:
    """Where a PDF document's original lies: what a render worker is sent instead of its bytes."""

    database_url: str
    space_id: str
    doc_id: str
    filename: str


def stored_pdf(record: DocumentRecord, database_url: str) -> StoredPdf:
    """The original of a PDF document, to be read by the worker; `UnsupportedMediaType` for any other kind."""
    if record.ext != ".pdf":
        raise UnsupportedMediaType(
            f"pages are rendered for PDF documents only; {record.filename!r} is {record.ext or 'plain text'}",
            ext=record.ext,
        )
    return StoredPdf(database_url, record.space_id, record.doc_id, record.filename)


@functools.cache
def _registry(database_url: str) -> Registry:
    """The worker's own connection to the database, made at its first render and kept."""
    from docassist.pipelines.storage.database import Database

    return Registry(Database(database_url))


def warm_renderer() -> bool:
    """Load what a render needs before the first one, so its time budget is spent drawing."""
    import PIL.PngImagePlugin  # noqa: F401
    import pypdfium2  # noqa: F401

    from docassist.pipelines.storage import database  # noqa: F401

    return True


@dataclass(frozen=True)
class RenderedPage:
    """A page as PNG bytes, and how many lines of the quote asked for are marked on it (None: no
    quote was asked for; 0: the page does not hold it)."""

    png: bytes
    marked_lines: int | None = None


def render_stored_page(
    source: StoredPdf, number: int, limits: ExtractLimits, dpi: int = PAGE_DPI, highlight: Highlight | None = None
) -> RenderedPage:
    """In a render worker: page `number` (1-based, as locations count pages) of the stored PDF as
    PNG bytes, in colour, the `highlight`ed characters of the document's text marked on it;
    `NotFound` when the document is gone or has no such page."""
    registry = _registry(source.database_url)
    data = registry.original(source.space_id, source.doc_id)
    text = registry.text_in(source.space_id, source.doc_id) if highlight else ""
    if data is None or text is None:
        raise NotFound.document(source.space_id, source.doc_id)
    if highlight is None:
        return render_page_png(data, number, limits, dpi)
    words = registry.page_words(source.space_id, source.doc_id, number)
    return render_page_png(data, number, limits, dpi, Quote(highlight.quote(text), words))


@dataclass(frozen=True)
class Quote:
    """Text to mark on a page, and the words OCR read there (for a scanned page)."""

    text: str
    words: tuple[OcrWord, ...] = ()


def render_page_png(
    data: bytes, number: int, limits: ExtractLimits, dpi: int = PAGE_DPI, quote: Quote | None = None
) -> RenderedPage:
    """Page `number` (1-based) of the PDF `data` as PNG bytes, its images and its size checked first,
    `quote` marked on it (found in the page's text layer, else among its OCR'd words)."""
    import pypdfium2 as pdfium

    from docassist.pipelines.documents.formats.ocr import draw_page

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadableDocument(f"the stored PDF cannot be opened ({exc})") from exc
    try:
        pages = len(pdf)
        if not 1 <= number <= pages:
            raise NotFound(f"no page {number}: the document has {pages} page{'s' if pages != 1 else ''}", pages=pages)
        page = pdf[number - 1]
        try:
            check_page_images(page, number, limits)
            image = draw_page(page, number, limits, dpi, grayscale=False)
            boxes = (text_layer_boxes(page, quote.text) or ocr_boxes(quote.words, quote.text)) if quote else []
        finally:
            page.close()
    finally:
        pdf.close()
    out = io.BytesIO()
    draw_marks(image, boxes).save(out, "PNG", optimize=False, compress_level=6)
    return RenderedPage(out.getvalue(), len(boxes) if quote else None)


def image_pixels(page: Any) -> int:
    """The pixels the page's images declare, all placements together (each one is decoded and
    scaled when drawn), read from their dictionaries: nothing is decoded. An image whose size
    pdfium cannot read is left out: it cannot draw it either."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    total = 0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=_FORM_DEPTH):
        try:
            width, height = obj.get_px_size()
        except pdfium.PdfiumError:
            continue
        total += width * height
    return total


def check_page_images(page: Any, number: int, limits: ExtractLimits) -> None:
    """`PageTooCostly` when the page's images declare more pixels than MAX_IMAGE_PIXELS allows."""
    pixels = image_pixels(page)
    if pixels > limits.max_image_pixels:
        raise PageTooCostly(
            f"page {number} holds images of {pixels:,} pixels in all; MAX_IMAGE_PIXELS allows "
            f"{limits.max_image_pixels:,}, so it is not drawn",
            page=number,
            limit="MAX_IMAGE_PIXELS",
            pixels=pixels,
            allowed=limits.max_image_pixels,
        )
