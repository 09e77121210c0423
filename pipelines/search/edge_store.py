"""llama-index's vector-store interface over a Qdrant Edge shard: the embedded default store.

Qdrant Edge is Qdrant's own engine in-process (Rust): the server's segments, HNSW, payload
indexes and Query API, so the collection layout, the BM25 sparse vectors (IDF applied by the
engine) and the DBSF fusion are those of the server path. Points are written as
llama-index's `QdrantVectorStore` writes them (`node_to_metadata_dict`, dense vector under
"dense", BM25 terms of the node's embed-mode content under "bm25"), so a space moves between
Edge and a server by re-upserting its points unchanged.

Concurrency: the shard is internally synchronised (segments behind a read-write lock, the WAL
behind a mutex), and its Python methods hold the GIL while they run, so reads and writes
from several threads need no lock of ours. Only `close` takes the shard exclusively; calls
after it fail as `VectorStoreUnavailable`. One process at a time may open a shard directory
(the WAL is locked): a second open fails at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import qdrant_edge as qe
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from pydantic import PrivateAttr

from docassist.pipelines.errors import VectorStoreUnavailable
from docassist.pipelines.search import sparse
from docassist.pipelines.search.scope import LANGUAGE_KEY, TAGS_KEY, UPLOADED_KEY, VERSION_KEY, Scope

DENSE = "dense"
SPARSE = "bm25"
SPACE_KEY = "space_id"
DOC_KEY = "doc_id"  # llama-index writes the node's ref_doc_id here
RRF_K = 2  # the Qdrant server's default for FusionQuery(RRF)
EDGE_CONFIG_FILE = "edge_config.json"

Fusion = Literal["dbsf", "rrf"]


def shard_config(dim: int) -> qe.EdgeConfig:
    """The collection layout of the server path: cosine dense vectors, BM25 with the IDF modifier."""
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )


def is_shard(path: Path) -> bool:
    return (path / EDGE_CONFIG_FILE).is_file()


def open_shard(path: Path, dim: int) -> qe.EdgeShard:
    """Load the shard at `path` (checking its layout against `dim`) or create it, with the keyword
    payload indexes every query filters on."""
    config = shard_config(dim)
    try:
        if is_shard(path):
            shard = qe.EdgeShard.load(str(path), config)
        else:
            path.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(path), config)
        for key in (SPACE_KEY, DOC_KEY, TAGS_KEY, LANGUAGE_KEY):  # creating an index that exists is a no-op
            shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
        shard.update(qe.UpdateOperation.create_field_index(UPLOADED_KEY, qe.PayloadSchemaType.Float))
    except Exception as exc:
        raise VectorStoreUnavailable(f"cannot open the Qdrant Edge shard at {path}: {exc}") from exc
    return shard


def edge_filter(space_id: str | None = None, doc_id: str | None = None, scope: Scope | None = None) -> qe.Filter:
    must: list[Any] = []
    if space_id is not None:
        must.append(qe.FieldCondition(key=SPACE_KEY, match=qe.MatchValue(space_id)))
    if doc_id is not None:
        must.append(qe.FieldCondition(key=DOC_KEY, match=qe.MatchValue(doc_id)))
    if scope:
        if scope.doc_ids:
            must.append(qe.FieldCondition(key=DOC_KEY, match=qe.MatchAny(list(scope.doc_ids))))
        if scope.tags:
            must.append(qe.FieldCondition(key=TAGS_KEY, match=qe.MatchAny(list(scope.tags))))
        if scope.languages:
            must.append(qe.FieldCondition(key=LANGUAGE_KEY, match=qe.MatchAny(list(scope.languages))))
        if scope.window:
            window = qe.RangeFloat(gte=scope.uploaded_after, lt=scope.uploaded_before)
            must.append(qe.FieldCondition(key=UPLOADED_KEY, range=window))
    return qe.Filter(must=must)


def to_node(point: Any) -> TextNode:
    """A node from a point's payload, as llama-index's `QdrantVectorStore` reads it back."""
    node = metadata_dict_to_node(point.payload or {})
    vector = getattr(point, "vector", None)
    if isinstance(vector, dict) and node.embedding is None and isinstance(vector.get(DENSE), list):
        node.embedding = vector[DENSE]
    return node  # type: ignore[return-value]


class EdgeVectorStore(BasePydanticVectorStore):
    """Hybrid dense + BM25 chunk store in one Qdrant Edge shard directory."""

    stores_text: bool = True
    flat_metadata: bool = False
    path: str
    dim: int
    batch_size: int = 128

    _shard: qe.EdgeShard | None = PrivateAttr(default=None)

    def __init__(self, path: Path, dim: int, batch_size: int = 128) -> None:
        super().__init__(path=str(path), dim=dim, batch_size=batch_size)
        self._shard = open_shard(path, dim)

    @classmethod
    def class_name(cls) -> str:
        return "EdgeVectorStore"

    @property
    def client(self) -> qe.EdgeShard:
        if self._shard is None:
            raise VectorStoreUnavailable(f"the Qdrant Edge shard at {self.path} is closed")
        return self._shard

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.client, method)(*args)
        except VectorStoreUnavailable:
            raise
        except Exception as exc:  # the bindings raise plain `Exception` with the engine's message
            raise VectorStoreUnavailable(f"Qdrant Edge at {self.path} failed: {exc}") from exc

    # writes

    def points(self, nodes: Sequence[BaseNode]) -> list[qe.Point]:
        """Nodes as points, with the payload and both vectors llama-index's Qdrant store writes."""
        ids, values = sparse.doc_fn([n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes])
        return [
            qe.Point(
                node.node_id,
                {DENSE: node.get_embedding(), SPARSE: qe.SparseVector(indices=i, values=v)},
                node_to_metadata_dict(node, remove_text=False, flat_metadata=self.flat_metadata),
            )
            for node, i, v in zip(nodes, ids, values, strict=True)
        ]

    def upsert(self, points: Sequence[qe.Point]) -> None:
        for start in range(0, len(points), self.batch_size):
            self._call("update", qe.UpdateOperation.upsert_points(list(points[start : start + self.batch_size])))

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        self.upsert(self.points(nodes))
        return [n.node_id for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        self.delete_where(doc_id=ref_doc_id)

    def delete_where(self, space_id: str | None = None, doc_id: str | None = None) -> None:
        self._call("update", qe.UpdateOperation.delete_points_by_filter(edge_filter(space_id, doc_id)))

    def delete_versions(self, space_id: str, doc_id: str, version: int, keep: bool) -> None:
        """A document's chunks of `version` (`keep`: of every other version)."""
        flt = edge_filter(space_id, doc_id)
        match = qe.FieldCondition(key=VERSION_KEY, match=qe.MatchValue(version))
        both = qe.Filter(must=flt.must, must_not=[match]) if keep else qe.Filter(must=[*flt.must, match])
        self._call("update", qe.UpdateOperation.delete_points_by_filter(both))

    def set_payload_where(self, payload: dict[str, Any], space_id: str, doc_id: str | None = None) -> None:
        """Set payload keys on every point of a space (or of one of its documents)."""
        self._call("update", qe.UpdateOperation.set_payload_by_filter(edge_filter(space_id, doc_id), payload))

    def missing(self, key: str) -> int:
        """Points without `key` in their payload (chunks written before it was kept)."""
        flt = qe.Filter(must=[qe.IsEmptyCondition(key)])
        return int(self._call("count", qe.CountRequest(exact=True, filter=flt)))

    def clear(self) -> None:
        self.delete_where()

    # reads

    def count(self, space_id: str | None = None, doc_id: str | None = None) -> int:
        return int(self._call("count", qe.CountRequest(exact=True, filter=edge_filter(space_id, doc_id))))

    def scroll(self, flt: qe.Filter | None = None, with_vector: bool = False, page: int = 256) -> Iterator[Any]:
        """Every point under `flt`, page by page."""
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=page, filter=flt, with_payload=True, with_vector=with_vector
            )
            batch, offset = self._call("scroll", request)
            yield from batch
            if offset is None:
                return

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> list[BaseNode]:
        if node_ids is not None:
            return [to_node(r) for r in self._call("retrieve", [uuid.UUID(i) for i in node_ids], True, False)]
        return [to_node(p) for p in self.scroll(qe.Filter(must=self._conditions(filters)))]

    def hybrid(
        self,
        dense: list[float] | None,
        terms: tuple[list[int], list[float]] | None,
        flt: qe.Filter,
        top_k: int,
        depth: int,
        fusion: Fusion = "dbsf",
    ) -> list[tuple[TextNode, float]]:
        """A dense and a BM25 prefetch under `flt`, fused in the engine; one of the two alone when
        the other is None."""
        stages = []
        if dense is not None:
            stages.append(qe.Query.Nearest(dense, using=DENSE))
        if terms is not None and terms[0]:
            stages.append(qe.Query.Nearest(qe.SparseVector(indices=terms[0], values=terms[1]), using=SPARSE))
        if not stages:
            return []
        if len(stages) == 1:
            request = qe.QueryRequest(limit=top_k, query=stages[0], filter=flt, with_payload=True)
        else:
            request = qe.QueryRequest(
                limit=top_k,
                prefetches=[qe.Prefetch(limit=depth, query=s, filter=flt) for s in stages],
                query=qe.Fusion.Dbsf() if fusion == "dbsf" else qe.Fusion.Rrf(k=RRF_K),
                with_payload=True,
            )
        return [(to_node(p), float(p.score)) for p in self._call("query", request)]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """llama-index's query: dense nearest neighbours, or dense + BM25 fused by DBSF in hybrid mode."""
        must = self._conditions(query.filters)
        if query.doc_ids:
            must.append(qe.FieldCondition(key=DOC_KEY, match=qe.MatchAny(list(query.doc_ids))))
        flt = qe.Filter(must=must)
        terms = None
        if query.mode == VectorStoreQueryMode.HYBRID and query.query_str:
            terms = sparse.encode_query(query.query_str)
        k = query.hybrid_top_k or query.similarity_top_k
        hits = self.hybrid(query.query_embedding, terms, flt, k, max(k, query.sparse_top_k or k))
        return VectorStoreQueryResult(
            nodes=[n for n, _ in hits], similarities=[s for _, s in hits], ids=[n.node_id for n, _ in hits]
        )

    @staticmethod
    def _conditions(filters: MetadataFilters | None) -> list[Any]:
        """Equality filters (all must hold): what this store's callers use."""
        must: list[Any] = []
        for f in filters.filters if filters else []:
            if isinstance(f, MetadataFilters) or f.operator != FilterOperator.EQ:
                raise NotImplementedError("EdgeVectorStore filters on equality of payload keys only")
            must.append(qe.FieldCondition(key=f.key, match=qe.MatchValue(f.value)))
        return must

    # lifecycle

    def optimize(self) -> bool:
        """Merge segments and build HNSW where the engine's thresholds say so; blocks (and holds the
        GIL) until done."""
        return bool(self._call("optimize"))

    def indexed_vectors(self) -> int:
        return int(self._call("info").indexed_vectors_count)

    def close(self) -> None:
        shard, self._shard = self._shard, None
        if shard is not None:
            shard.close()
