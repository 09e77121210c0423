"""One page of a stored PDF as a PNG, so a reader sees the page a citation names.

The service renders the page itself (pypdfium2, already used for OCR): the page loads nothing from
elsewhere and needs no PDF viewer in the browser. The PDF is a user's upload, so it is rendered in
an extraction worker (`ExtractionSandbox.render_page`), under the same memory cap and time limit
as reading it, and the rendered size is checked against `MAX_IMAGE_PIXELS` before any pixel is
drawn, as for OCR.
"""

from __future__ import annotations

import io

from docassist.pipelines.documents.extract import ExtractLimits
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.errors import NotFound, UnreadableDocument, UnsupportedMediaType, shown

PAGE_DPI = 110  # an A4 page is 909 × 1,286 pixels: legible on a screen, a few hundred KB as PNG


def stored_pdf(registry: Registry, record: DocumentRecord) -> bytes:
    """The original bytes of a PDF document; `UnsupportedMediaType` for any other kind."""
    if record.ext != ".pdf":
        raise UnsupportedMediaType(
            f"pages are rendered for PDF documents only; {record.filename!r} is {record.ext or 'plain text'}",
            ext=record.ext,
        )
    data = registry.original(record.space_id, record.doc_id)
    if data is None:
        raise NotFound(f"no document {shown(record.doc_id)} in space {record.space_id!r}", space_id=record.space_id)
    return data


def page_count(data: bytes) -> int:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadableDocument(f"the stored PDF cannot be opened ({exc})") from exc
    try:
        return len(pdf)
    finally:
        pdf.close()


def render_page_png(data: bytes, number: int, limits: ExtractLimits, dpi: int = PAGE_DPI) -> bytes:
    """Page `number` (1-based, as locations count pages) of the PDF `data` as PNG bytes, in colour;
    `NotFound` when the document has no such page."""
    from docassist.pipelines.documents.formats.ocr import render_pdf_page

    pages = page_count(data)
    if not 1 <= number <= pages:
        raise NotFound(f"no page {number}: the document has {pages} page{'s' if pages != 1 else ''}", pages=pages)
    image = render_pdf_page(data, number - 1, limits, dpi=dpi, grayscale=False)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()
