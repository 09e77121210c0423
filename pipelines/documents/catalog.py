"""What a team says about its documents: tags and titles, and the listing that filters, searches
and pages by them.

Tags live in their own table, one row per tag, keyed by the tag's case-folded form, so "Finance"
and "finance" are one tag on every database and a tag filter is an index look-up. A document's
`title_key` holds its title and filename case-folded, so a title search finds "Отчёт" from
"отчёт" on SQLite as on PostgreSQL (SQLite's `lower()` folds ASCII only). The chunks carry the
tags too, as a payload Qdrant filters on (`search/scope.py`); `Library.describe` keeps both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, delete, func, insert, select, update

from docassist.pipelines.documents.registry import COLUMNS, DocumentRecord, Registry, key, title_key
from docassist.pipelines.errors import VectorStoreUnavailable
from docassist.pipelines.logs import event
from docassist.pipelines.search.scope import TAGS_KEY, UPLOADED_KEY, VERSION_KEY, tag_payload, uploaded_payload
from docassist.pipelines.search.store import Store
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import document_tags, documents

Sort = Literal["created_at", "filename", "title", "size_bytes", "chunks"]
MAX_PAGE = 1000
MAX_TITLE_CHARS = 300


class _Keep:
    """A title left as it is (None clears it)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()
Titled = str | None | _Keep


@dataclass(frozen=True)
class DocumentQuery:
    """A page of a space's documents: any of the filters given all hold."""

    tag: str | None = None
    language: str | None = None
    q: str | None = None  # in the title or the filename, case-folded
    sort: Sort = "created_at"
    descending: bool = False
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class CatalogPage:
    records: list[DocumentRecord]
    tags: dict[str, tuple[str, ...]]
    total: int  # documents the filters keep, across all pages


class Catalog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def tags_of(self, space_id: str, doc_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each document's tags in the order they were given; documents without tags left out."""
        if not doc_ids:
            return {}
        found: dict[str, list[str]] = {}
        query = (
            select(document_tags.c.doc_id, document_tags.c.tag)
            .where(document_tags.c.space_id == space_id, document_tags.c.doc_id.in_(list(doc_ids)))
            .order_by(document_tags.c.doc_id, document_tags.c.position)
        )
        with self.db.begin() as conn:
            for doc_id, tag in conn.execute(query):
                found.setdefault(doc_id, []).append(tag)
        return {d: tuple(t) for d, t in found.items()}

    def describe(
        self,
        space_id: str,
        doc_id: str,
        filename: str,
        tags: tuple[str, ...] | None,
        title: str | None,
        set_title: bool,
    ) -> bool:
        """Replace the document's tags (when given) and its title (when `set_title`; None clears it),
        in one transaction; False, with nothing written, when the document is gone."""
        with self.db.begin() as conn:
            if conn.execute(select(documents.c.doc_id).where(key(space_id, doc_id))).first() is None:
                return False
            if tags is not None:
                mine = and_(document_tags.c.space_id == space_id, document_tags.c.doc_id == doc_id)
                conn.execute(delete(document_tags).where(mine))
                rows = [
                    {"space_id": space_id, "doc_id": doc_id, "tag_key": t.casefold(), "tag": t, "position": i}
                    for i, t in enumerate(tags)
                ]
                if rows:
                    conn.execute(insert(document_tags), rows)
            if set_title:
                named = update(documents).where(key(space_id, doc_id))
                conn.execute(named.values(title=title, title_key=title_key(title, filename)))
        return True

    def find(self, space_id: str, query: DocumentQuery) -> CatalogPage:
        where = [documents.c.space_id == space_id, documents.c.state == "ready"]
        if query.tag:
            tagged = select(document_tags.c.doc_id).where(
                document_tags.c.space_id == space_id, document_tags.c.tag_key == query.tag.strip().casefold()
            )
            where.append(documents.c.doc_id.in_(tagged))
        if query.language:
            where.append(documents.c.language == query.language.strip().lower())
        if query.q and query.q.strip():
            where.append(documents.c.title_key.contains(query.q.strip().casefold(), autoescape=True))
        column = documents.c[query.sort]
        if query.sort == "title":  # untitled documents sort by filename among the titled ones
            column = func.coalesce(documents.c.title, documents.c.filename)
        order = column.desc() if query.descending else column.asc()
        tie = documents.c.doc_id.desc() if query.descending else documents.c.doc_id.asc()
        listing = select(*COLUMNS).where(*where).order_by(order, tie).limit(query.limit).offset(query.offset)
        with self.db.begin() as conn:
            records = [DocumentRecord(*r) for r in conn.execute(listing)]
            total = conn.execute(select(func.count()).select_from(documents).where(*where)).scalar_one()
        return CatalogPage(records, self.tags_of(space_id, [r.doc_id for r in records]), int(total))


def stamp_older_chunks(store: Store, registry: Registry) -> int:
    """Give chunks written before scopes existed what a scope filters on (their document's upload
    time, its tags, version 1); returns the documents stamped. A start after that finds none, and
    one while Qdrant is away leaves them to the next."""
    try:
        if store.missing(UPLOADED_KEY) == 0:
            return 0
    except VectorStoreUnavailable as exc:
        event("[STORE] Older chunks not stamped for scopes", f"{exc.message}; next start", level=logging.WARNING)
        return 0
    stamped, catalog = 0, Catalog(registry.db)
    for space_id in registry.spaces():
        records = registry.list(space_id)
        tags = catalog.tags_of(space_id, [r.doc_id for r in records])
        for record in records:
            payload = {
                UPLOADED_KEY: uploaded_payload(record.created_at),
                TAGS_KEY: tag_payload(tags.get(record.doc_id, ())),
                VERSION_KEY: 1,
            }
            store.set_payload(payload, space_id, record.doc_id)
            stamped += 1
    event("[STORE] Older chunks stamped for scopes", f"{stamped} documents: upload time, tags", documents=stamped)
    return stamped
