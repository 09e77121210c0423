"""Retrieval alone: a question in, the space's best chunks out, no LLM.

`/search` exposes it and `/ask` builds on it. The dense query embedding is computed here
(e5's `query:` side); the fusion with BM25 happens inside Qdrant (`Store.search`). A query's
cost is its tokens, so it is capped by the embedding model's token count as well as by
characters (4,000 Cyrillic or CJK characters are ~4,000 tokens and took 22–31 s to embed),
and refused before any embedding. The query waits for its engine without holding a thread
(`embed_query`); the hybrid query runs on the search lane's threads.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import BaseNode

from docassist.pipelines import tracing
from docassist.pipelines.documents import locations
from docassist.pipelines.documents.locations import Location, Place
from docassist.pipelines.errors import InvalidInput
from docassist.pipelines.lanes import Lane
from docassist.pipelines.logs import event
from docassist.pipelines.search.embeddings import embed_query, max_query_tokens, query_tokens
from docassist.pipelines.search.matching import best_sentence
from docassist.pipelines.search.scope import VERSION_KEY, Scope
from docassist.pipelines.search.store import FUSION, Store
from docassist.pipelines.spaces import check_space_id

MAX_QUERY_CHARS = 4000  # a question, not a document: longer queries are refused before any embedding


@dataclass
class Source:
    doc_id: str
    filename: str
    score: float
    text: str
    chunk: int
    # where the chunk sits; None for documents ingested before locations were kept
    location: Location | None = None
    # where the chunk spans several sections: each one's offset in `text` and location, in order
    places: list[Place] | None = None
    # where the sentence that matched the query best sits (its own slide, rows, chapter or page)
    match_location: Location | None = None
    version: int = 1  # the document's version the chunk belongs to (`PUT /documents/{id}` makes the next)


@dataclass(frozen=True)
class SearchTiming:
    """Where a search's milliseconds went: embedding the query, and the hybrid query itself."""

    embed_ms: float
    search_ms: float
    total_ms: float


@dataclass
class SearchResult:
    sources: list[Source]
    timing: SearchTiming


def location_of(metadata: dict) -> Location | None:
    """A chunk's location as stored in its payload, checked field by field."""
    return Location.from_dict(metadata.get("location"))


def places_of(metadata: dict) -> list[Place] | None:
    """The sections a chunk spans, as stored in its payload (`[offset, location]` each), checked."""
    places = []
    for entry in metadata.get("places") or []:
        if isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[0], int):
            location = Location.from_dict(entry[1])
            if location is not None:
                places.append((entry[0], location))
    return places or None


def source_of(node: BaseNode, score: float, q: str) -> Source:
    """A hit as a source, with the place of its sentence that matches `q` best."""
    text, location, places = node.get_content(), location_of(node.metadata), places_of(node.metadata)
    return Source(
        doc_id=node.ref_doc_id or "",
        filename=node.metadata.get("filename", ""),
        score=round(score, 6),
        text=text,
        chunk=int(node.metadata.get("chunk", 0)),
        location=location,
        places=places,
        match_location=match_location(text, q, location, places),
        version=_version(node.metadata.get(VERSION_KEY)),
    )


def _version(value: object) -> int:
    """A chunk's version from its payload: 1 for chunks stored before versions were kept."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def match_location(text: str, query: str, location: Location | None, places: list[Place] | None) -> Location | None:
    """Where the sentence of a hit that matches `query` best sits: its own slide, rows, chapter or
    page when the hit spans several; the hit's location when it spans one or none matched."""
    span = best_sentence(text, query) if places else None
    return (locations.within(places, *span) or location) if places and span else location


def within(source: Source, start: int, end: int) -> Location | None:
    """Where [start, end) of a source's text sits: its own page (slide, rows…) where the chunk
    spans several, else the chunk's location."""
    if not source.places:
        return source.location
    return locations.within(source.places, start, end) or source.location


class Retriever:
    def __init__(self, store: Store, embed_model: BaseEmbedding, lane: Lane) -> None:
        self.store, self.embed_model, self.lane = store, embed_model, lane

    async def search(self, q: str, space_id: str, top_k: int, scope: Scope | None = None) -> SearchResult:
        """The space's `top_k` best chunks for `q`, from the documents `scope` keeps (all without)."""
        check_space_id(space_id)
        if not q or not q.strip():
            raise InvalidInput("q must not be empty")
        if len(q) > MAX_QUERY_CHARS:
            raise InvalidInput(f"q is longer than {MAX_QUERY_CHARS:,} characters", limit=MAX_QUERY_CHARS, length=len(q))
        if not 1 <= top_k <= 100:
            raise InvalidInput("top_k must be between 1 and 100", top_k=top_k)
        tokens, limit = query_tokens(self.embed_model, q), max_query_tokens(self.embed_model)
        if tokens > limit:
            raise InvalidInput(
                f"q is {tokens:,} tokens long, more than the embedding model reads ({limit} tokens)",
                limit_tokens=limit,
                tokens=tokens,
            )
        with tracing.span("retrieval", **{"retrieval.top_k": top_k, "retrieval.query_tokens": tokens}) as span:
            t0 = time.perf_counter()
            dense = await embed_query(self.embed_model, q, self.lane)
            t1 = time.perf_counter()
            hits = await self.lane.run(self.store.search, dense, q, space_id, top_k, FUSION, None, scope)
            t2 = time.perf_counter()
            span.set_attribute("retrieval.hits", len(hits))
        sources = [source_of(h.node, h.score, q) for h in hits]
        timing = SearchTiming(
            embed_ms=round((t1 - t0) * 1000, 1),
            search_ms=round((t2 - t1) * 1000, 1),
            total_ms=round((t2 - t0) * 1000, 1),
        )
        event(
            "[RETRIEVAL]",
            f"space={space_id} scope={scope.describe() if scope else 'whole space'} top_k={top_k} → "
            f"{len(sources)} chunks from "
            f"{len({s.doc_id for s in sources})} documents · embed {timing.embed_ms} ms · "
            f"hybrid query {timing.search_ms} ms",
            space_id=space_id,
            hits=len(sources),
            **asdict(timing),
        )
        return SearchResult(sources=sources, timing=timing)
