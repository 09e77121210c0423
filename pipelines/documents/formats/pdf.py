"""PDF: each page's text layer as a part with its page number, and the scanned pages marked for OCR."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from docassist.pipelines.documents.locations import Location, Part
from docassist.pipelines.errors import EncryptedDocument, TooManyPages

if TYPE_CHECKING:
    from docassist.pipelines.documents.limits import ExtractLimits


def pdf_parts(data: bytes, limits: ExtractLimits) -> list[Part]:
    """Each page's text layer as a part with its page number; a page without one that holds an
    image (a scan) as a part for OCR to read, the others (blank pages) left out."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise EncryptedDocument("the PDF is protected by a password; upload it without one")
    try:
        pages = len(reader.pages)
    except LimitReachedError as exc:
        raise TooManyPages(f"the PDF has more pages than its reader will count ({exc})") from exc
    if pages > limits.max_pdf_pages:
        raise TooManyPages(
            f"the PDF has {pages:,} pages; MAX_PDF_PAGES allows {limits.max_pdf_pages:,}",
            pages=pages,
            limit=limits.max_pdf_pages,
        )
    texts: list[str] = []
    length = 0
    for page in reader.pages:
        text = page.extract_text() or ""
        length += len(text)
        if length > limits.max_document_chars * 2:  # far past the text limit: stop reading
            break
        texts.append(text)
    textless = [i for i, text in enumerate(texts) if not any(ch.isalnum() for ch in text)]
    if textless:
        from docassist.pipelines.documents.formats.ocr import scanned_pages

        scans = set(scanned_pages(data, textless))
    else:
        scans = set()
    return [
        Part("", Location(page=i + 1), ocr_page=i) if i in scans else Part(text, Location(page=i + 1))
        for i, text in enumerate(texts)
    ]
