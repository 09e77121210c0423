"""The data layer against both databases it runs on: SQLite (a file in a temporary DATA_DIR) and the
machine's real PostgreSQL (a fresh database per test). The same tests, the same expectations."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

from docassist.pipelines.documents.registry import Contents, DocumentRecord, Registry, text_sha256
from docassist.pipelines.errors import StoreUnavailable
from docassist.pipelines.storage.database import Database
from docassist.pipelines.summaries.events import JobProgress, Usage
from docassist.pipelines.summaries.jobs.store import JobStore
from docassist.pipelines.summaries.runs.store import CachedSummary, RunOf, SummaryStore
from tests.servers import TcpProxy, fresh_postgres_database


def add_document(registry: Registry, space: str, doc_id: str, text: str) -> DocumentRecord:
    record = DocumentRecord(
        doc_id, space, "a.txt", ".txt", "ru", 1, 10, len(text), len(text), 0.0, text_sha256=text_sha256(text)
    )
    registry.begin(record)
    registry.commit(space, doc_id, Contents(text, text.encode()))
    return registry.get(space, doc_id)


def summary(text: str = "Сводка.") -> CachedSummary:
    return CachedSummary(text, "ru", "direct", Usage(llm_calls=1), {"total_s": 1.0}, time.time())


def test_migrating_twice_changes_nothing_and_creates_every_table(db: Database):
    assert db.migrate() == "0010"
    with db.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert {"documents", "document_contents", "summaries", "partials", "jobs", "uploads"} <= tables
    assert {"conversations", "messages", "alembic_version", "document_tags"} <= tables


def test_a_document_is_listed_only_once_it_is_committed_and_keeps_its_text(db: Database):
    registry = Registry(db)
    record = DocumentRecord("d1", "s", "a.txt", ".txt", "ru", 1, 10, 5, 5, 0.0, text_sha256=text_sha256("Текст"))
    registry.begin(record)
    assert registry.list("s") == [] and [r.doc_id for r in registry.unfinished()] == ["d1"]
    registry.commit("s", "d1", Contents("Текст", "Текст".encode()))
    assert [r.doc_id for r in registry.list("s")] == ["d1"] and registry.unfinished() == []
    assert registry.text("s", "d1") == "Текст"
    assert registry.get("other", "d1") is None, "a document belongs to its space"
    registry.delete("s", "d1")
    assert registry.get("s", "d1") is None


def test_a_summary_is_not_written_for_a_deleted_document(db: Database):
    registry, store = Registry(db), SummaryStore(db)
    record = add_document(registry, "s", "d1", "Байкал.")
    run = RunOf("k1", "s", "d1", record.text_sha256)
    store.put_partial(run, "n1", "часть", 10, 2)
    registry.delete("s", "d1")
    assert store.put_if_document_exists(run, summary()) is False
    assert store.get("k1") is None
    record = add_document(registry, "s", "d1", "Байкал.")
    assert store.put_if_document_exists(run, summary()) is True
    assert store.get("k1").summary == "Сводка."
    assert store.get_partial("k1", "n1") is None, "a finished run's partial results are dropped with it"


def test_deleting_a_document_keeps_its_twins_summary_and_drops_its_own(db: Database):
    registry, store = Registry(db), SummaryStore(db)
    a = add_document(registry, "s", "a", "Один и тот же текст.")
    add_document(registry, "s", "b", "Один и тот же текст.")
    other = add_document(registry, "t", "c", "Один и тот же текст.")
    store.put_if_document_exists(RunOf("ks", "s", "a", a.text_sha256), summary())
    store.put_if_document_exists(RunOf("kt", "t", "c", other.text_sha256), summary("Другое пространство."))
    registry.delete("s", "a")
    store.forget_document("s", "a", a.text_sha256, last_of_its_text=registry.twins("s", a.text_sha256) == 0)
    assert store.get("ks") is not None, "document b of the same space has the same text"
    registry.delete("s", "b")
    store.forget_document("s", "b", a.text_sha256, last_of_its_text=registry.twins("s", a.text_sha256) == 0)
    assert store.get("ks") is None
    assert store.get("kt").summary == "Другое пространство.", "another space's summary is untouched"


def test_a_job_is_claimed_by_one_worker_renewed_and_taken_over_when_its_lease_runs_out(db: Database):
    jobs = JobStore(db)
    job = jobs.create("s", "d", "ru")
    assert jobs.claim(job.job_id, "w1", lease_s=30).lease_owner == "w1"
    assert jobs.claim(job.job_id, "w2", lease_s=30) is None, "held by w1"
    assert jobs.renew(job.job_id, "w1", lease_s=30) and not jobs.renew(job.job_id, "w2", lease_s=30)
    assert jobs.record_progress(job.job_id, "w2", JobProgress(stage="map")) is False, "only the holder writes"
    assert jobs.record_progress(job.job_id, "w1", JobProgress(stage="map", done=1, total=3))
    assert jobs.expired() == []
    jobs.renew(job.job_id, "w1", lease_s=-1)  # w1 stops renewing: its lease is in the past
    [expired] = jobs.expired()
    assert jobs.requeue_if_expired(expired) and not jobs.requeue_if_expired(expired), "one worker requeues it"
    again = jobs.claim(job.job_id, "w2", lease_s=30)
    assert again.lease_owner == "w2" and again.attempts == 2
    assert again.progress.resumed and again.progress.done == 1


def test_a_database_that_stops_answering_is_store_unavailable_and_comes_back(tmp_path: Path):
    with fresh_postgres_database() as url:
        proxy = TcpProxy("127.0.0.1", 5432)
        try:
            db = Database(url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
            db.migrate()
            registry = Registry(db)
            assert registry.list("s") == []
            proxy.cut()
            with pytest.raises(StoreUnavailable) as err:
                registry.list("s")
            assert "postgresql" in err.value.message and "password" not in err.value.message
            assert db.health().ok is False
            proxy.restore()
            assert registry.list("s") == [] and db.health().ok is True
            db.close()
        finally:
            proxy.close()
