"""Documents in the shared database: metadata, state, and content.

Listing a space must not scroll every vector, and an ingest must be undoable after a crash: a
row is written as `writing` before any vector, and flipped to `ready` only after the vectors
and the content are in place. At start, rows still `writing` name exactly what a crash left
half-done (`Ingestor.recover` removes it).

Each document's extracted text and original bytes live here too (`document_contents`), so any
backend can summarize a document that another one ingested. Each row keeps the SHA-256 of the
text: the content part of its summary's cache key, so a cached summary is found without
reading or hashing the text.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

from sqlalchemy import and_, delete, func, insert, select, update

from docassist.pipelines.documents.locations import OcrWord, PageWords
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import document_contents, document_tags, document_versions, documents


@dataclass
class DocumentRecord:
    doc_id: str
    space_id: str
    filename: str
    ext: str
    language: str
    chunks: int
    tokens: int
    chars: int
    size_bytes: int
    created_at: float
    state: str = "ready"
    text_sha256: str | None = None
    title: str | None = None  # set by PATCH /documents/{id}; the filename stands for it until then
    version: int = 1  # PUT /documents/{id} makes the next (`versions.py`)
    sha256: str | None = None  # of the uploaded bytes
    version_at: float | None = None  # when this version came; None: at `created_at`


COLUMNS = [documents.c[name] for name in DocumentRecord.__dataclass_fields__]


@dataclass(frozen=True)
class Contents:
    """What a version of a document holds besides its row: its text, the bytes uploaded, and for
    a scanned PDF the words OCR read on each page with their boxes."""

    text: str
    original: bytes
    page_words: PageWords = field(default_factory=dict)

    def columns(self) -> dict[str, str | bytes | None]:
        """As `document_contents` keeps them: the words as JSON, `{"3": [[text, left, top, right, bottom,
        line], …]}`."""
        words = json.dumps({str(n): words for n, words in self.page_words.items()}) if self.page_words else None
        return {"text": self.text, "original": self.original, "page_words": words}


def title_key(title: str | None, filename: str) -> str:
    """What a title search reads: title and filename, case-folded in Python (SQLite's `lower()`
    folds ASCII only)."""
    return f"{title or ''}\n{filename}".casefold()


def text_sha256(text: str) -> str:
    """The content part of a summary's cache key: SHA-256 of the extracted text (not of the upload's bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key(space_id: str, doc_id: str):
    return and_(documents.c.space_id == space_id, documents.c.doc_id == doc_id)


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, space_id: str, doc_id: str, include_writing: bool = False) -> DocumentRecord | None:
        with self.db.begin() as conn:
            row = conn.execute(select(*COLUMNS).where(key(space_id, doc_id))).first()
        record = DocumentRecord(*row) if row else None
        if record and record.state != "ready" and not include_writing:
            return None
        return record

    def exists(self, space_id: str, doc_id: str) -> bool:
        return self.get(space_id, doc_id) is not None

    def list(self, space_id: str) -> list[DocumentRecord]:
        query = (
            select(*COLUMNS)
            .where(documents.c.space_id == space_id, documents.c.state == "ready")
            .order_by(documents.c.created_at)
        )
        with self.db.begin() as conn:
            return [DocumentRecord(*r) for r in conn.execute(query)]

    def named(self, space_id: str, filename: str) -> DocumentRecord | None:
        """The space's newest ready document of this filename (`/ingest` with `replace=true`)."""
        query = (
            select(*COLUMNS)
            .where(documents.c.space_id == space_id, documents.c.filename == filename, documents.c.state == "ready")
            .order_by(documents.c.created_at.desc())
            .limit(1)
        )
        with self.db.begin() as conn:
            row = conn.execute(query).first()
        return DocumentRecord(*row) if row else None

    def spaces(self) -> list[str]:
        """The spaces that hold at least one ready document, sorted (one model each in `/v1/models`)."""
        query = (
            select(documents.c.space_id).where(documents.c.state == "ready").distinct().order_by(documents.c.space_id)
        )
        with self.db.begin() as conn:
            return [row[0] for row in conn.execute(query)]

    def chunks_by_space(self) -> dict[str, int]:
        """How many chunks each space's ready documents have in the vector store: what a collection
        made with the model in force must hold (`search/collections.py`)."""
        query = (
            select(documents.c.space_id, func.sum(documents.c.chunks))
            .where(documents.c.state == "ready")
            .group_by(documents.c.space_id)
        )
        with self.db.begin() as conn:
            return {space: int(total or 0) for space, total in conn.execute(query)}

    def unfinished(self) -> list[DocumentRecord]:
        with self.db.begin() as conn:
            return [DocumentRecord(*r) for r in conn.execute(select(*COLUMNS).where(documents.c.state != "ready"))]

    def begin(self, record: DocumentRecord) -> None:
        record.state, record.created_at = "writing", time.time()
        with self.db.begin() as conn:
            conn.execute(delete(documents).where(key(record.space_id, record.doc_id)))
            conn.execute(insert(documents).values(**asdict(record), title_key=title_key(record.title, record.filename)))

    def commit(self, space_id: str, doc_id: str, contents: Contents) -> None:
        """The content goes in and the row becomes `ready` in one transaction."""
        with self.db.begin() as conn:
            conn.execute(
                delete(document_contents).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            )
            conn.execute(insert(document_contents).values(space_id=space_id, doc_id=doc_id, **contents.columns()))
            conn.execute(update(documents).where(key(space_id, doc_id)).values(state="ready"))

    def text(self, space_id: str, doc_id: str) -> str:
        with self.db.begin() as conn:
            return conn.execute(
                select(document_contents.c.text).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            ).scalar_one()

    def text_in(self, space_id: str, doc_id: str) -> str | None:
        """The document's text, or None once it is deleted (a citation placed after the answer)."""
        with self.db.begin() as conn:
            return conn.execute(
                select(document_contents.c.text).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            ).scalar_one_or_none()

    def original(self, space_id: str, doc_id: str) -> bytes | None:
        """The uploaded file's bytes as they came (a page of a PDF is rendered from them); None
        once the document is deleted."""
        with self.db.begin() as conn:
            return conn.execute(
                select(document_contents.c.original).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            ).scalar_one_or_none()

    def page_words(self, space_id: str, doc_id: str, page: int) -> tuple[OcrWord, ...]:
        """The words OCR read on page `page` (1-based) of a scanned PDF, where they sit; none for a
        page with a text layer, or a document read before words were kept."""
        with self.db.begin() as conn:
            stored = conn.execute(
                select(document_contents.c.page_words).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            ).scalar_one_or_none()
        words = json.loads(stored).get(str(page), []) if stored else []
        return tuple(OcrWord(*word) for word in words)

    def text_of(self, record: DocumentRecord) -> str:
        return self.text(record.space_id, record.doc_id)

    def content_hash(self, record: DocumentRecord) -> str:
        """The text's SHA-256, stored at ingest; computed once and stored for rows from before that."""
        if record.text_sha256 is None:
            record.text_sha256 = text_sha256(self.text_of(record))
            with self.db.begin() as conn:
                conn.execute(
                    update(documents).where(key(record.space_id, record.doc_id)).values(text_sha256=record.text_sha256)
                )
        return record.text_sha256

    def twins(self, space_id: str, text_sha256: str) -> int:
        """Ready documents of the space with this text (they share cached summaries)."""
        with self.db.begin() as conn:
            rows = conn.execute(
                select(documents.c.doc_id).where(
                    documents.c.space_id == space_id,
                    documents.c.text_sha256 == text_sha256,
                    documents.c.state == "ready",
                )
            ).all()
        return len(rows)

    def delete(self, space_id: str, doc_id: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                delete(document_contents).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            )
            for table in (document_tags, document_versions):
                conn.execute(delete(table).where(table.c.space_id == space_id, table.c.doc_id == doc_id))
            conn.execute(delete(documents).where(key(space_id, doc_id)))
