"""A deployment's collections, one per embedding model, and what a change of model needs.

A collection is named `<collection>_<model tag>_<dimension>` (`Store`, `embeddings.model_tag`),
so vectors of two models are never searched together. When the model in force changes, its
collection lacks the chunks the registry counts: a start is refused, naming the command that fills
it (`check_embedded`), rather than serving searches that find nothing. These helpers read an
older collection a page at a time, tell which of a page's chunks a collection already holds, and
remove a collection once its successor is complete (`reembedding.py`).
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from llama_index.core.schema import TextNode

from docassist.pipelines.environment import ConfigError
from docassist.pipelines.errors import VectorStoreUnavailable
from docassist.pipelines.logs import event
from docassist.pipelines.search.edge_store import edge_filter, is_shard, to_node
from docassist.pipelines.search.store import Store, space_filter
from docassist.pipelines.settings import Settings

REEMBED = "docassist reembed"


class ReembedNeeded(ConfigError):
    """The data directory's documents were embedded by another model than the one in force."""

    def __init__(self, message: str) -> None:
        super().__init__("DATA_DIR", "EMBEDDING_MODEL", message)
        self.message = message


@dataclass(frozen=True)
class Shortfall:
    """Spaces whose chunks the collection in force lacks, and the collections that may hold them."""

    collection: str
    missing: dict[str, tuple[int, int]]  # space → (chunks the collection holds, chunks the registry counts)
    sources: list[str]  # the deployment's other collections

    @property
    def chunks(self) -> int:
        return sum(want - have for have, want in self.missing.values())


def parse_name(name: str, prefix: str) -> tuple[str, int] | None:
    """(model tag, dimension) of a collection named by `Store`; None for another's."""
    found = re.fullmatch(re.escape(prefix) + r"_(.+)_(\d+)", name)
    return (found.group(1), int(found.group(2))) if found else None


def collection_names(settings: Settings) -> list[str]:
    """Every collection of this deployment: the Edge shards under DATA_DIR, or the server's."""
    vs = settings.profile.vector_store
    if vs.url is None:
        root = settings.qdrant_edge_path
        names = [p.name for p in root.iterdir() if is_shard(p)] if root.is_dir() else []
    else:
        from qdrant_client import QdrantClient

        client = QdrantClient(url=vs.url, api_key=vs.api_key, timeout=30)
        try:
            names = [c.name for c in client.get_collections().collections]
        except Exception as exc:
            raise VectorStoreUnavailable(f"cannot list the collections of Qdrant at {vs.url}: {exc}") from exc
        finally:
            client.close()
    return sorted(n for n in names if parse_name(n, vs.collection) is not None)


def shortfall(store: Store, expected: dict[str, int], settings: Settings) -> Shortfall | None:
    """What the collection in force lacks of the registry's chunks (`expected`, by space); None when
    it holds them all."""
    missing = {space: (have, want) for space, want in expected.items() if (have := store.count(space)) < want}
    if not missing:
        return None
    sources = [n for n in collection_names(settings) if n != store.collection]
    return Shortfall(store.collection, missing, sources)


def check_embedded(store: Store, expected: dict[str, int], settings: Settings) -> None:
    """Refuse a start whose model did not embed the documents the registry holds (`ReembedNeeded`,
    with the command that re-embeds them); with no other collection to re-embed from, say so in the
    log and serve."""
    gap = shortfall(store, expected, settings)
    if gap is None:
        return
    if not gap.sources:
        event(
            "[STORE] Chunks missing",
            f"{store.collection} holds fewer chunks than the registry counts in {len(gap.missing)} space(s) "
            "and no other collection has them",
            level=logging.WARNING,
        )
        return
    spaces = sorted(gap.missing)
    message = (
        f"the documents of {len(spaces)} space(s) ({', '.join(spaces[:5])}{'…' if len(spaces) > 5 else ''}) were "
        f"embedded by another model ({', '.join(gap.sources)}): {gap.collection}, the collection of "
        f"{settings.profile.embedding.model or settings.profile.embedding.kind}, lacks {gap.chunks:,} of their chunks. "
        f"Re-embed them with this same environment: `{REEMBED} --all` (or `{REEMBED} --space S`, a space at a time); "
        "it resumes where a stopped run left off, and the old collection is kept until the new one is complete"
    )
    event("[STARTUP] Refused: documents embedded by another model", message, level=logging.ERROR)
    raise ReembedNeeded(message)


def open_collection(settings: Settings, name: str) -> Store:
    """The store over an existing collection of this deployment, by name."""
    parsed = parse_name(name, settings.profile.vector_store.collection)
    if parsed is None:
        raise ValueError(f"{name!r} is not a collection of this deployment")
    return Store(settings, parsed[1], parsed[0])


def page(store: Store, space_id: str | None, offset: str | None, size: int) -> tuple[list[TextNode], str | None]:
    """One page of a collection's chunks (text, payload and id, no vector) and the next page's offset."""
    if store.edge is not None:
        request_offset = uuid.UUID(offset) if offset else None
        import qdrant_edge as qe

        request = qe.ScrollRequest(
            offset=request_offset, limit=size, filter=edge_filter(space_id), with_payload=True, with_vector=False
        )
        points, following = store.edge._call("scroll", request)
    else:
        _ = store.vector_store
        with store._guard():
            points, following = store.client.scroll(
                store.collection, scroll_filter=space_filter(space_id), limit=size, offset=offset, with_payload=True
            )
    nodes = []
    for point in points:
        node = to_node(point)
        node.id_ = str(point.id)
        nodes.append(node)
    return nodes, None if following is None else str(following)


def present(store: Store, ids: list[str]) -> set[str]:
    """Which of `ids` the collection holds already."""
    if not ids:
        return set()
    if store.edge is not None:
        return {str(r.id) for r in store.edge._call("retrieve", [uuid.UUID(i) for i in ids], False, False)}
    _ = store.vector_store
    with store._guard():
        found = store.client.retrieve(store.collection, ids, with_payload=False, with_vectors=False)
    return {str(r.id) for r in found}


def remove(settings: Settings, store: Store) -> None:
    """Close the store and delete its collection: the Edge shard's folder, or the server's collection."""
    name, location = store.collection, store.location
    if store.edge is not None:
        store.close()
        shutil.rmtree(Path(location), ignore_errors=True)
    else:
        with store._guard():
            store.client.delete_collection(name)
        store.close()
    event(
        "[STORE] Collection removed", f"{name}: its chunks are in the collection of the model in force", collection=name
    )
