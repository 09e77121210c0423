"""Turn an uploaded file into plain text, or say clearly why not — within limits.

Text files arrive in any common encoding (Russian ones often in Windows-1251);
charset-normalizer decides. PDF via pypdf (with its crypto extra, so AES-encrypted and
owner-password-only files open as in any viewer), DOCX via python-docx, HTML via lxml; PPTX, XLSX,
CSV/TSV, ODT/ODS/ODP and EPUB by the modules of `formats/`. PDF pages without a text layer that hold
an image, and images (PNG, JPEG, TIFF), are read by OCR (`formats/ocr.py`), one page at a time.

Extraction has three steps, so the sandbox can run OCR page by page: `read_parts` reads the file
into `Part`s (text, where it sits, or a page still to OCR), `ocr_part` reads one page, and `finish`
joins and normalises them into an `Extracted` text with its sections (`locations.py`).

Limits are checked before the expensive step they protect (`ExtractLimits`, `limits.py`): a zip format's
unpacked size and compression ratio from its zip directory (and again while unpacking, in case the
directory lies), and its XML parts for entity declarations, before any library parses it
(`formats/archive.py`); the markup an HTML parser reads; a PDF's page count before its pages are
read; a spreadsheet's rows as they are read; the pages to OCR (`MAX_OCR_PAGES`) before any is read, an
image's pixels from its header (`MAX_IMAGE_PIXELS`); the extracted text's length before anything is
chunked or embedded. Any other failure of a parser is `unreadable_document` naming the file, never a 500.
`sandbox.py` runs all of this in a child process with a time and memory limit.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import TypeVar

from docassist.pipelines.documents.formats.markup import too_deep
from docassist.pipelines.documents.formats.ocr import IMAGE_EXTS, OcrPage, check_available, image_frames, ocr_page
from docassist.pipelines.documents.formats.plain import decode_text
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.documents.locations import Extracted, Location, Part, join_parts
from docassist.pipelines.errors import (
    DocassistError,
    InvalidInput,
    MarkupTooLarge,
    NoText,
    TextTooLong,
    TooDeeplyNested,
    TooManyOcrPages,
    UnreadableDocument,
    UnsupportedMediaType,
)

SUPPORTED = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".epub": "application/epub+zip",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
# zips of XML: vetted by `formats.archive.check_archive` before their library opens them
ZIP_FORMATS = {".docx", ".pptx", ".xlsx", ".odt", ".ods", ".odp", ".epub"}
T = TypeVar("T")


MAX_FILENAME_CHARS = 255
_JOINERS = {"\u200c", "\u200d"}  # zero-width (non-)joiners: needed to write Persian, emoji sequences


def check_filename(filename: str) -> str:
    """Refuse a file name that could show as something it is not: control characters, line
    separators, and invisible formatting characters — bidirectional overrides above all: with
    U+202E after `invoice`, `invoice<U+202E>txt.exe` displays as `invoiceexe.txt`."""
    for ch in filename:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp") or (category == "Cf" and ch not in _JOINERS):
            kind = "a control character" if category == "Cc" else "an invisible formatting character"
            raise InvalidInput(
                f"the file name contains {kind} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}); "
                "rename the file without it",
                character=f"U+{ord(ch):04X}",
            )
    if len(filename) > MAX_FILENAME_CHARS:
        raise InvalidInput(f"the file name is {len(filename):,} characters; at most {MAX_FILENAME_CHARS} are allowed")
    return filename


def file_kind(filename: str) -> str:
    """The normalised extension of a supported file with a name that shows as what it is, or
    `InvalidInput` / `UnsupportedMediaType`."""
    check_filename(filename or "")
    ext = PurePath(filename or "").suffix.lower()
    if ext not in SUPPORTED:
        raise UnsupportedMediaType(
            f"unsupported file type {ext or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED))}",
            filename=filename,
        )
    return ext


def _docx_parts(data: bytes) -> list[Part]:
    import docx

    from docassist.pipelines.documents.formats.headings import docx_parts

    return docx_parts(docx.Document(io.BytesIO(data)))


def normalize(text: str) -> str:
    """NFC, no control characters, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_KINDS = {ext: ext[1:].upper() for ext in SUPPORTED} | {".htm": "HTML", ".markdown": "MD"}
_WHAT = {
    "PDF": "the PDF is damaged or truncated, or is not a PDF",
    "DOCX": "the DOCX is damaged, or is not a Word document (.docx is a zip of XML parts)",
    "PPTX": "the PPTX is damaged, or is not a PowerPoint presentation (.pptx is a zip of XML parts)",
    "XLSX": "the XLSX is damaged, or is not an Excel workbook (.xlsx is a zip of XML parts)",
    "ODT": "the ODT is damaged, or is not an OpenDocument text (.odt is a zip of XML parts)",
    "ODS": "the ODS is damaged, or is not an OpenDocument spreadsheet (.ods is a zip of XML parts)",
    "ODP": "the ODP is damaged, or is not an OpenDocument presentation (.odp is a zip of XML parts)",
    "EPUB": "the EPUB is damaged, or is not an e-book (.epub is a zip of XHTML chapters)",
    "CSV": "the CSV is damaged: its rows cannot be split into fields",
    "TSV": "the TSV is damaged: its rows cannot be split into fields",
}


def _unreadable(filename: str, kind: str, exc: Exception) -> str:
    """In words, what is wrong with the file; the parser's own words only when they are words
    (the exception's class is for the log, not for the person who uploaded the file)."""
    what = _WHAT.get(kind, f"the {kind} is damaged")
    said = " ".join(str(exc).split())
    detail = f" ({said[:200]})" if said and re.search(r"[A-Za-z]{3,}", said) else ""
    return f"{filename!r} could not be read: {what}{detail}"[:500]


def _read(ext: str, data: bytes, limits: ExtractLimits) -> str | list[Part]:
    """The raw text of a file of kind `ext`; each format's library is imported only when needed."""
    if ext in ZIP_FORMATS:
        from docassist.pipelines.documents.formats.archive import check_archive

        check_archive(data, limits, _KINDS[ext])
    if ext == ".pdf":
        from docassist.pipelines.documents.formats.pdf import pdf_parts

        return pdf_parts(data, limits)
    if ext in IMAGE_EXTS:
        frames = image_frames(data, limits)
        return [Part("", Location(page=i + 1) if frames > 1 else None, ocr_page=i) for i in range(frames)]
    if ext == ".docx":
        return _docx_parts(data)
    if ext in (".md", ".markdown"):
        from docassist.pipelines.documents.formats.headings import markdown_parts

        return markdown_parts(decode_text(data))
    if ext in (".html", ".htm"):
        from docassist.pipelines.documents.formats.markup import html_document_parts

        return html_document_parts(data, limits)
    if ext == ".pptx":
        from docassist.pipelines.documents.formats.slides import pptx_text

        return pptx_text(data)
    if ext in (".xlsx", ".csv", ".tsv"):
        from docassist.pipelines.documents.formats.tables import csv_text, xlsx_text

        return xlsx_text(data, limits) if ext == ".xlsx" else csv_text(data, limits, ext)
    if ext in (".odt", ".ods", ".odp"):
        from docassist.pipelines.documents.formats.odf import odf_text

        return odf_text(data, limits, ext)
    if ext == ".epub":
        from docassist.pipelines.documents.formats.epub import epub_text

        return epub_text(data)
    return decode_text(data)


@dataclass(frozen=True)
class ReadParts:
    """A file read into parts; those with `ocr_page` set wait for OCR (`ocr_parts` of them)."""

    filename: str
    ext: str
    parts: tuple[Part, ...]

    @property
    def ocr_parts(self) -> list[Part]:
        return [p for p in self.parts if p.ocr_page is not None]


def _guarded(filename: str, ext: str, read: Callable[[], T]) -> T:
    """Run a reader, turning a parser's failure into a typed error naming the file."""
    try:
        return read()
    except DocassistError:
        raise
    except MemoryError as exc:
        raise MarkupTooLarge("reading the document needs more memory than EXTRACT_MEMORY_MB allows") from exc
    except RecursionError as exc:
        raise TooDeeplyNested(too_deep(_KINDS.get(ext, "file"))) from exc
    except Exception as exc:  # any parser's failure: corrupt, truncated, or a construct it cannot read
        kind = _KINDS.get(ext, "file")
        if "Excessive depth" in str(exc):
            raise TooDeeplyNested(too_deep(kind)) from exc
        raise UnreadableDocument(_unreadable(filename, kind, exc), filename=filename) from exc


def read_parts(filename: str, data: bytes, limits: ExtractLimits | None = None) -> ReadParts:
    """The first step of extraction: the file's parts, with the pages that need OCR counted against
    MAX_OCR_PAGES and Tesseract checked to be there before any is read."""
    limits = limits or ExtractLimits()
    ext = file_kind(filename)
    if not data.strip():
        raise NoText("the file is empty", filename=filename)
    raw = _guarded(filename, ext, lambda: _read(ext, data, limits))
    read = ReadParts(filename, ext, tuple([Part(raw)] if isinstance(raw, str) else raw))
    scans = len(read.ocr_parts)
    if scans > limits.max_ocr_pages:
        raise TooManyOcrPages(
            f"the document has {scans:,} scanned pages to OCR; MAX_OCR_PAGES allows {limits.max_ocr_pages:,}",
            pages=scans,
            limit=limits.max_ocr_pages,
        )
    if scans:
        check_available(limits)
    return read


def ocr_part(filename: str, ext: str, page: int, data: bytes, limits: ExtractLimits | None = None) -> OcrPage:
    """The text of one page (0-based) that waits for OCR: one page, one call. It is given the file's
    name and kind, not its parts, so a worker is sent no more than it reads."""
    limits = limits or ExtractLimits()
    return _guarded(filename, ext, lambda: ocr_page(ext, data, page, limits))


def finish(read: ReadParts, ocr_pages: Sequence[OcrPage], limits: ExtractLimits | None = None) -> Extracted:
    """The document's normalised text from its parts, the OCR'd ones filled in (in order); `NoText`
    when there is none to work with, `TextTooLong` past MAX_DOCUMENT_CHARS. A scanned PDF keeps
    each page's words and their boxes."""
    limits = limits or ExtractLimits()
    texts = iter(page.text for page in ocr_pages)
    parts = [replace(p, text=next(texts), ocr_page=None) if p.ocr_page is not None else p for p in read.parts]
    words = (
        {(part.ocr_page or 0) + 1: page.words for part, page in zip(read.ocr_parts, ocr_pages, strict=True)}
        if read.ext == ".pdf"
        else {}
    )
    text, sections = join_parts(parts, normalize)
    if len(text) > limits.max_document_chars:
        raise TextTooLong(
            f"the document has {len(text):,} characters of text; MAX_DOCUMENT_CHARS allows "
            f"{limits.max_document_chars:,}",
            chars=len(text),
            limit=limits.max_document_chars,
        )
    if sum(ch.isalnum() for ch in text) < 2:
        hint = (
            " (its pages hold neither a text layer nor a scanned image for OCR to read)" if read.ext == ".pdf" else ""
        )
        raise NoText(f"no extractable text in the document{hint}", filename=read.filename)
    return Extracted(text, sections, ocr_pages=len(ocr_pages), page_words=words)


@dataclass(frozen=True)
class OcrProgress:
    """Pages OCR'd of those to read, and the document's text up to the first page still being
    read: what the finished text will begin with, so chunking and embedding can start on it while
    OCR goes on."""

    done: int
    total: int
    text_so_far: str


class TextSoFar:
    """The normalised text of `read`'s parts before the first page still waiting for OCR, the
    pages OCR'd so far filled in: a prefix of what `finish` returns. Each part is normalised once,
    as the pages that reach it arrive, not again at every page (`join_parts`' text, grown)."""

    def __init__(self, read: ReadParts) -> None:
        self.read = read
        self._next = 0  # the first part not yet taken in
        self._pages = 0  # OCR'd pages taken in
        self._pieces: list[str] = []

    def after(self, ocr_texts: Sequence[str]) -> str:
        """The text with the first `len(ocr_texts)` OCR'd pages in; `ocr_texts` only grows between calls."""
        parts = self.read.parts
        while self._next < len(parts):
            part = parts[self._next]
            if part.ocr_page is not None:
                if self._pages >= len(ocr_texts):
                    break
                part = replace(part, text=ocr_texts[self._pages], ocr_page=None)
                self._pages += 1
            text = normalize(part.text)
            if text:
                if self._pieces:
                    self._pieces.append(part.sep)
                self._pieces.append(text)
            self._next += 1
        return "".join(self._pieces)


def read_or_finish(filename: str, data: bytes, limits: ExtractLimits | None = None) -> Extracted | ReadParts:
    """`read_parts`, then `finish` at once when no page needs OCR: how the sandbox's first task ends,
    so a document without scans is normalised in the worker, within its limits, as it always was."""
    read = read_parts(filename, data, limits)
    return read if read.ocr_parts else finish(read, [], limits)


def extract_document(
    filename: str,
    data: bytes,
    limits: ExtractLimits | None = None,
    progress: Callable[[OcrProgress], None] | None = None,
) -> Extracted:
    """The document's text and where its sections sit, every step in this process (the sandbox runs
    the same steps in its workers, pages side by side); `progress` as in the sandbox."""
    limits = limits or ExtractLimits()
    read = read_parts(filename, data, limits)
    pages: list[OcrPage] = []
    so_far = TextSoFar(read)
    for part in read.ocr_parts:
        if progress is not None:
            progress(OcrProgress(len(pages), len(read.ocr_parts), so_far.after([p.text for p in pages])))
        pages.append(ocr_part(filename, read.ext, part.ocr_page or 0, data, limits))
    if progress is not None and read.ocr_parts:
        progress(OcrProgress(len(pages), len(read.ocr_parts), so_far.after([p.text for p in pages])))
    return finish(read, pages, limits)


def extract_text(filename: str, data: bytes, limits: ExtractLimits | None = None) -> str:
    """The document's text, normalised; `NoText` when there is none to work with, a `TooLarge`
    kind naming the limit when it is past one, `UnreadableDocument` when a parser fails."""
    return extract_document(filename, data, limits).text
