"""Turn an uploaded file into plain text, or say clearly why not.

Text files arrive in any common encoding (Russian ones often in Windows-1251);
charset-normalizer decides. PDF via pypdf, DOCX via python-docx, HTML via BeautifulSoup.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import PurePath

from charset_normalizer import from_bytes

from docassist.pipelines.errors import NoText, UnreadableDocument, UnsupportedMediaType

SUPPORTED = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
}


def file_kind(filename: str) -> str:
    """The normalised extension of a supported file, or `UnsupportedMediaType`."""
    ext = PurePath(filename or "").suffix.lower()
    if ext not in SUPPORTED:
        raise UnsupportedMediaType(
            f"unsupported file type {ext or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED))}",
            filename=filename,
        )
    return ext


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding; UTF-8 (with or without BOM) is tried first."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[2:].decode(codec, errors="replace")
    best = from_bytes(data).best()
    if best is None:
        raise UnreadableDocument("could not determine the text encoding")
    return str(best)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, NotImplementedError) as exc:
        raise UnreadableDocument(f"corrupt or unreadable PDF: {exc}") from exc


def _docx_text(data: bytes) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"corrupt or unreadable DOCX: {exc}") from exc
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def _html_text(data: bytes) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return soup.get_text("\n")


def normalize(text: str) -> str:
    """NFC, no control characters, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_text(filename: str, data: bytes) -> str:
    """The document's text, normalised; raises `NoText` when there is none to work with."""
    ext = file_kind(filename)
    if not data.strip():
        raise NoText("the file is empty", filename=filename)
    if ext == ".pdf":
        raw = _pdf_text(data)
    elif ext == ".docx":
        raw = _docx_text(data)
    elif ext in (".html", ".htm"):
        raw = _html_text(data)
    else:
        raw = decode_text(data)
    text = normalize(raw)
    if sum(ch.isalnum() for ch in text) < 2:
        hint = " (a scanned PDF needs OCR first)" if ext == ".pdf" else ""
        raise NoText(f"no extractable text in the document{hint}", filename=filename)
    return text
