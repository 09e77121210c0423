"""Moves a Qdrant local-mode folder (DATA_DIR/qdrant, the embedded store of earlier releases)
into Qdrant Edge shards at start, without loss.

Each collection is copied point by point (id, payload, dense and BM25 vectors) into a staging
shard beside its destination, verified by count, flushed, then renamed into place; a start
that stops part-way leaves only a staging folder, which the next start discards and redoes.
A collection whose shard already exists was finished by an earlier start and is skipped. Once
every collection is in place, the old folder is renamed aside (`qdrant-local-migrated`), never
deleted, and from then on there is nothing left to migrate.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from qdrant_client import QdrantClient

from docassist.pipelines.logs import event
from docassist.pipelines.search.edge_store import DENSE, SPARSE, EdgeVectorStore, is_shard

ASIDE = "qdrant-local-migrated"
PAGE = 256


class MigrationFailed(RuntimeError):
    pass


def pending(legacy: Path) -> bool:
    return (legacy / "meta.json").is_file()


def migrate(legacy: Path, edge_root: Path) -> int:
    """Copy every collection of the local-mode folder `legacy` into `edge_root/<collection>`;
    the number of points copied (0 when there is nothing to migrate)."""
    if not pending(legacy):
        return 0
    edge_root.mkdir(parents=True, exist_ok=True)
    copied = 0
    client = QdrantClient(path=str(legacy))
    try:
        for collection in client.get_collections().collections:
            copied += _collection(client, collection.name, edge_root)
    finally:
        client.close()
    aside = _aside(legacy)
    legacy.rename(aside)
    _fsync_dir(legacy.parent)
    event(
        "[STORE] Qdrant local mode migrated to Qdrant Edge",
        f"{copied:,} points copied into {edge_root}; the old folder is kept as {aside}",
        points=copied,
        aside=str(aside),
    )
    return copied


def _collection(client: QdrantClient, name: str, edge_root: Path) -> int:
    target = edge_root / name
    if is_shard(target):
        return 0
    vectors = client.get_collection(name).config.params.vectors
    if not isinstance(vectors, dict) or DENSE not in vectors:
        raise MigrationFailed(f"collection {name!r} has no {DENSE!r} vector: not a docassist collection")
    expected = client.count(name, exact=True).count
    staging = edge_root / f".{name}.migrating"
    shutil.rmtree(staging, ignore_errors=True)
    store = EdgeVectorStore(staging, vectors[DENSE].size)
    try:
        offset = None
        while True:
            batch, offset = client.scroll(name, limit=PAGE, offset=offset, with_payload=True, with_vectors=True)
            store.upsert([_point(p) for p in batch])
            if offset is None:
                break
        got = store.count()
        if got != expected:
            raise MigrationFailed(f"collection {name!r}: {got:,} points in Qdrant Edge, {expected:,} in local mode")
        store.client.flush()
    finally:
        store.close()
    os.replace(staging, target)
    _fsync_dir(edge_root)
    event("[STORE] Collection migrated", f"{name}: {expected:,} points", collection=name, points=expected)
    return expected


def _point(p: Any) -> qe.Point:
    vector: dict[str, Any] = {DENSE: p.vector[DENSE]}
    terms = p.vector.get(SPARSE)
    if terms is not None:
        vector[SPARSE] = qe.SparseVector(indices=list(terms.indices), values=list(terms.values))
    return qe.Point(p.id if isinstance(p.id, int) else str(p.id), vector, p.payload or {})


def _aside(legacy: Path) -> Path:
    aside = legacy.with_name(ASIDE)
    n = 1
    while aside.exists():
        n += 1
        aside = legacy.with_name(f"{ASIDE}-{n}")
    return aside


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
