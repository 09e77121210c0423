"""The embedded store of releases before Qdrant Edge: Qdrant local mode (qdrant-client's
pure-Python engine in a folder), written and queried as those releases did, through the same
llama-index store and Query API call as the server path. The retrieval benchmark measures it
beside Edge on the same points; the migration tests build data directories with it."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Literal

from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient, models

from docassist.pipelines.search.store import FUSION, Hit, qdrant_vector_store, query_points, space_filter


class LocalModeStore:
    """A folder of Qdrant local mode: one client per folder and process, calls serialised (local mode is
    not thread-safe), no payload indexes (local mode has none)."""

    def __init__(self, path: Path, collection: str, dim: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.collection = collection
        self.client = QdrantClient(path=str(path))
        self._lock = threading.RLock()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            self.vector_store = qdrant_vector_store(self.client, collection, dim)
            if not self.client.collection_exists(collection):
                self.vector_store._create_collection(collection, dim)

    def add(self, nodes: list[TextNode]) -> None:
        with self._lock:
            self.vector_store.add(nodes)

    def delete_document(self, space_id: str, doc_id: str) -> None:
        with self._lock:
            self.client.delete(
                self.collection, points_selector=models.FilterSelector(filter=space_filter(space_id, doc_id))
            )

    def count(self, space_id: str | None = None) -> int:
        with self._lock:
            return self.client.count(self.collection, count_filter=space_filter(space_id), exact=True).count

    def search(
        self,
        dense: list[float],
        query_text: str,
        space_id: str,
        top_k: int,
        fusion: models.Fusion = FUSION,
        only: Literal["dense", "bm25"] | None = None,
    ) -> list[Hit]:
        with self._lock:
            flt = space_filter(space_id)
            points = query_points(self.client, self.collection, dense, query_text, flt, top_k, fusion, only)
        result = self.vector_store.parse_to_query_result(points)
        return [Hit(node=n, score=float(s)) for n, s in zip(result.nodes, result.similarities or [], strict=False)]  # type: ignore[arg-type]

    def close(self) -> None:
        self.client.close()
