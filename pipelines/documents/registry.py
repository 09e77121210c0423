"""Document metadata in SQLite under DATA_DIR.

Listing a space must not scroll every vector, and an ingest must be undoable after a
crash: a row is written as `writing` before any vector, and flipped to `ready` only after
the vectors and files are in place. At start, rows still `writing` name exactly what a
crash left half-done (`Ingestor.recover` removes it).

Each row also keeps the SHA-256 of the document's extracted text, the content part of its
summary cache key: a cached summary is then found without reading or hashing the text.
Databases from before that column get it added, empty; `Ingestor.content_hash` fills a row
the first time it is needed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path


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

    def public(self) -> dict:
        data = asdict(self)
        data.pop("state")
        data.pop("text_sha256")
        return data


_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    space_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    ext TEXT NOT NULL,
    language TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    chars INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    text_sha256 TEXT,
    PRIMARY KEY (space_id, doc_id)
);
"""
_COLUMNS = (
    "doc_id, space_id, filename, ext, language, chunks, tokens, chars, size_bytes, created_at, state, text_sha256"
)


class Registry:
    """Thread-safe access to the documents table."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(documents)")}
        if "text_sha256" not in columns:
            self._conn.execute("ALTER TABLE documents ADD COLUMN text_sha256 TEXT")
        self._lock = threading.Lock()

    def get(self, space_id: str, doc_id: str, include_writing: bool = False) -> DocumentRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE space_id=? AND doc_id=?", (space_id, doc_id)
            ).fetchone()
        record = DocumentRecord(*row) if row else None
        if record and record.state != "ready" and not include_writing:
            return None
        return record

    def list(self, space_id: str) -> list[DocumentRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM documents WHERE space_id=? AND state='ready' ORDER BY created_at",
                (space_id,),
            ).fetchall()
        return [DocumentRecord(*r) for r in rows]

    def unfinished(self) -> list[DocumentRecord]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM documents WHERE state!='ready'").fetchall()
        return [DocumentRecord(*r) for r in rows]

    def begin(self, record: DocumentRecord) -> None:
        record.state, record.created_at = "writing", time.time()
        with self._lock:
            self._conn.execute(
                f"INSERT OR REPLACE INTO documents ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                tuple(asdict(record).values()),
            )

    def commit(self, space_id: str, doc_id: str) -> None:
        with self._lock:
            self._conn.execute("UPDATE documents SET state='ready' WHERE space_id=? AND doc_id=?", (space_id, doc_id))

    def set_text_sha256(self, space_id: str, doc_id: str, digest: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE documents SET text_sha256=? WHERE space_id=? AND doc_id=?", (digest, space_id, doc_id)
            )

    def delete(self, space_id: str, doc_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM documents WHERE space_id=? AND doc_id=?", (space_id, doc_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
