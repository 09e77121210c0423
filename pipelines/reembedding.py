"""`docassist reembed`: a data directory's chunks embedded again by the model in force.

A change of embedding model leaves the documents' chunks in the old model's collection, and the
service refuses to start until the new model's collection holds them (`search/collections.py`).
This reads the old collection a page at a time — each chunk's text, payload and id, as the
upload wrote them — embeds the texts with the model in force (its passage side) and writes
them, same ids, BM25 terms made again from the same text, into the new collection. Nothing is
extracted or chunked again, and the old collection is only read: searches a service still serves
from it go on. A page's chunks the new collection already holds are not embedded again, so a
run killed half way resumes where it stopped. Once the new collection holds every space's
chunks, the old one is removed (`keep_old` keeps it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding

from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.logs import event
from docassist.pipelines.search.collections import collection_names, open_collection, page, present, remove, shortfall
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim, model_tag
from docassist.pipelines.search.remote_embeddings import RemoteEmbedding
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import Settings
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.private import secure_data_dir


@dataclass(frozen=True)
class Progress:
    """How far a run is: chunks of its scope in the new collection, of how many; how many it embedded."""

    done: int
    total: int
    embedded: int


@dataclass(frozen=True)
class Outcome:
    source: str
    target: str
    chunks: int  # of the scope, in the old collection
    embedded: int  # by this run (the others were there from an earlier one)
    complete: bool  # the new collection holds every space's chunks: a service starts on it
    removed: bool  # the old collection was removed
    seconds: float


class NothingToReembed(RuntimeError):
    """No other collection holds this deployment's chunks, or the one named is not one of them."""


def _unheard(_progress: Progress) -> None:
    return None


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[tuple[Registry, BaseEmbedding, Store]]:
    secure_data_dir(settings.data_dir)
    db = Database.for_data_dir(settings.database_url, settings.data_dir)
    db.migrate(settings.files_dir)
    model = build_embedding(settings.profile.embedding)
    target = Store(settings, embedding_dim(model), model_tag(settings.profile.embedding))
    try:
        yield Registry(db), model, target
    finally:
        target.close()
        if isinstance(model, RemoteEmbedding):
            model.close()
        db.close()


def _source(settings: Settings, target: Store, named: str | None) -> Store:
    """The collection to re-embed from: the one named, or the other collection with the most chunks."""
    others = [n for n in collection_names(settings) if n != target.collection]
    if named is not None and named not in others:
        raise NothingToReembed(f"{named!r} is not another collection of this deployment; there are: {others}")
    if not others:
        raise NothingToReembed(f"no collection but {target.collection} (the model in force's): nothing to re-embed")
    best: tuple[int, Store] | None = None
    for name in [named] if named else others:
        store = open_collection(settings, name)
        count = store.count()
        if best is not None and count <= best[0]:
            store.close()
            continue
        if best is not None:
            best[1].close()
        best = (count, store)
    assert best is not None
    return best[1]


def copy(
    source: Store, target: Store, model: BaseEmbedding, space: str | None, progress: Callable[[Progress], None]
) -> tuple[int, int]:
    """Every chunk of `space` (all without) from `source` into `target`, embedded by `model` where
    `target` lacks it: (chunks of the scope, chunks embedded). A page is what the model embeds in
    one go (a server's round of concurrent requests): all a killed run may have embedded in vain."""
    total, done, embedded, offset = source.count(space), 0, 0, None
    while True:
        nodes, offset = page(source, space, offset, max(model.embed_batch_size, 1))
        have = present(target, [n.node_id for n in nodes])
        todo = [n for n in nodes if n.node_id not in have]
        if todo:
            vectors = model.get_text_embedding_batch([n.text for n in todo])
            for node, vector in zip(todo, vectors, strict=True):
                node.embedding = vector
            target.add(todo)
        done, embedded = done + len(nodes), embedded + len(todo)
        progress(Progress(done, total, embedded))
        if offset is None:
            return total, embedded


def reembed(
    settings: Settings,
    space: str | None = None,
    keep_old: bool = False,
    source: str | None = None,
    progress: Callable[[Progress], None] = _unheard,
) -> Outcome:
    """Re-embed `space` (every space without) into the model in force's collection; see the module."""
    started = time.perf_counter()
    with _opened(settings) as (registry, model, target):
        old = _source(settings, target, source)
        try:
            event("[REEMBED] Started", f"{old.collection} → {target.collection} · space {space or 'all'}")
            chunks, embedded = copy(old, target, model, space, progress)
            complete = shortfall(target, registry.chunks_by_space(), settings) is None
            removed = complete and not keep_old
            if removed:
                remove(settings, old)
        finally:
            old.close()
    outcome = Outcome(old.collection, target.collection, chunks, embedded, complete, removed,
                      round(time.perf_counter() - started, 1))  # fmt: skip
    event(
        "[REEMBED] Done",
        f"{old.collection} → {target.collection}: {chunks:,} chunks, {embedded:,} embedded by this run in "
        f"{outcome.seconds}s · {'complete' if complete else 'other spaces still to re-embed'}"
        + (" · old collection removed" if removed else ""),
        chunks=chunks,
        embedded=embedded,
        complete=complete,
    )
    return outcome
