"""A document's versions: each upload under one id (`PUT /documents/{id}`) is version n+1.

The current version's text and original live in `document_contents`, as for every document; a
version replaced keeps its own in `document_versions`, so an earlier conversation's quote can be
read in the text it was quoted from (`GET /documents/{id}/versions/{n}/text`). A document never
replaced has no rows here: its version 1 is its `documents` row.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

from llama_index.core.schema import TextNode
from sqlalchemy import Connection, delete, insert, select, update

from docassist.pipelines.documents.catalog import Catalog
from docassist.pipelines.documents.registry import Contents, DocumentRecord, key, title_key
from docassist.pipelines.search.scope import TAGS_KEY, UPLOADED_KEY, VERSION_KEY, tag_payload, uploaded_payload
from docassist.pipelines.search.store import Store
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import document_contents, document_versions, documents


@dataclass(frozen=True)
class Version:
    n: int
    filename: str
    uploaded_at: float
    sha256: str  # of the uploaded bytes
    size: int  # bytes


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mine(space_id: str, doc_id: str):
    return (document_versions.c.space_id == space_id, document_versions.c.doc_id == doc_id)


class Versions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def replace(self, previous: DocumentRecord, record: DocumentRecord, contents: Contents) -> None:
        """Version `record.version` becomes the document's, in one transaction: the previous one's
        text and original move to `document_versions`, the row and the contents are the new ones."""
        space_id, doc_id = previous.space_id, previous.doc_id
        with self.db.begin() as conn:
            old = conn.execute(
                select(document_contents.c.text, document_contents.c.original).where(
                    document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id
                )
            ).one()
            kept = {"text": old.text, "original": old.original}
            if self._has(conn, space_id, doc_id, previous.version):
                where = (*_mine(space_id, doc_id), document_versions.c.n == previous.version)
                conn.execute(update(document_versions).where(*where).values(**kept))
            else:  # version 1 of a document never replaced: its row is written now
                sha = previous.sha256 or bytes_sha256(old.original)
                conn.execute(insert(document_versions).values(**_row(previous, sha), **kept))
            conn.execute(insert(document_versions).values(**_row(record, record.sha256 or "")))
            fields = {
                name: getattr(record, name)
                for name in ("filename", "ext", "language", "chunks", "tokens", "chars", "size_bytes")
            }
            conn.execute(
                update(documents)
                .where(key(space_id, doc_id))
                .values(
                    **fields,
                    text_sha256=record.text_sha256,
                    version=record.version,
                    sha256=record.sha256,
                    version_at=record.version_at,
                    title_key=title_key(previous.title, record.filename),
                )
            )
            conn.execute(
                update(document_contents)
                .where(document_contents.c.space_id == space_id, document_contents.c.doc_id == doc_id)
                .values(**contents.columns())
            )

    @staticmethod
    def _has(conn: Connection, space_id: str, doc_id: str, n: int) -> bool:
        where = (*_mine(space_id, doc_id), document_versions.c.n == n)
        return conn.execute(select(document_versions.c.n).where(*where)).first() is not None

    def of(self, record: DocumentRecord) -> list[Version]:
        """Every version of the document, oldest first."""
        columns = (
            document_versions.c.n,
            document_versions.c.filename,
            document_versions.c.uploaded_at,
            document_versions.c.sha256,
            document_versions.c.size_bytes,
        )
        query = select(*columns).where(*_mine(record.space_id, record.doc_id)).order_by(document_versions.c.n)
        with self.db.begin() as conn:
            rows = [Version(*r) for r in conn.execute(query)]
        if rows:
            return rows
        came = record.version_at or record.created_at
        return [Version(1, record.filename, came, record.sha256 or "", record.size_bytes)]

    def text(self, record: DocumentRecord, n: int) -> str | None:
        """Version `n`'s text; None when the document has no such version."""
        if n == record.version:
            return None
        where = (*_mine(record.space_id, record.doc_id), document_versions.c.n == n)
        with self.db.begin() as conn:
            return conn.execute(select(document_versions.c.text).where(*where)).scalar_one_or_none()

    @staticmethod
    def forget(conn: Connection, space_id: str, doc_id: str) -> None:
        conn.execute(delete(document_versions).where(*_mine(space_id, doc_id)))


def _row(record: DocumentRecord, sha256: str) -> dict[str, object]:
    return {
        "space_id": record.space_id,
        "doc_id": record.doc_id,
        "n": record.version,
        "filename": record.filename,
        "uploaded_at": record.version_at or record.created_at,
        "sha256": sha256,
        "size_bytes": record.size_bytes,
    }


def chunk_sha256(text: str) -> str:
    """A chunk's content hash: what a new version's chunk is matched to the replaced one's by."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reuse_vectors(store: Store, nodes: list[TextNode], previous: DocumentRecord) -> int:
    """The vectors of `previous`' chunks, given to the new chunks with the same text; how many were."""
    known = store.vectors_by_text(previous.space_id, previous.doc_id, chunk_sha256)
    reused = 0
    for node in nodes:
        vector = known.get(chunk_sha256(node.text))
        if vector is not None:
            node.embedding, reused = vector, reused + 1
    return reused


def write_version(
    store: Store,
    db: Database,
    records: tuple[DocumentRecord, DocumentRecord],
    nodes: list[TextNode],
    contents: Contents,
) -> None:
    """The new version's chunks in beside the old ones, then its row and contents in one
    transaction, then the old chunks out: a search meanwhile reads one version or the other,
    never neither. A failure before the row is written leaves the old version as it was."""
    previous, record = records
    tags = Catalog(db).tags_of(record.space_id, [record.doc_id]).get(record.doc_id, ())
    stamp = {
        UPLOADED_KEY: uploaded_payload(record.created_at),
        TAGS_KEY: tag_payload(tags),
        VERSION_KEY: record.version,
    }
    for node in nodes:
        node.metadata.update(stamp)
    store.add(nodes)
    try:
        Versions(db).replace(previous, record, contents)
    except BaseException:
        with contextlib.suppress(Exception):
            store.delete_version(record.space_id, record.doc_id, record.version)
        raise
    store.delete_other_versions(record.space_id, record.doc_id, record.version)
