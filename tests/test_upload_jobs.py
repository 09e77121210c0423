"""Uploads as jobs: a long upload is answered at once with a job whose stage and progress move,
deleting a document still being ingested stops it and leaves nothing, a document past
MAX_DOCUMENT_CHUNKS is refused before it is embedded, jobs of a process that died are failed, and
one space's burst of uploads neither locks another space out nor delays its upload behind it all.

Against the session's real service (real extraction, embeddings, Qdrant Edge, SQLite) over HTTP,
uploads posted without `wait` as the page and a plain `curl -F` send them."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docassist.api.errors import status_of
from docassist.pipelines.documents.extract import extract_document
from docassist.pipelines.documents.ingestion import Ingestor
from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.documents.upload_queue import UploadQueue
from docassist.pipelines.documents.upload_store import UploadJob, UploadStore
from docassist.pipelines.documents.uploads import gone_here, process_name
from docassist.pipelines.errors import SpaceUploadQueueFull, TooManyChunks, UploadQueueFull
from docassist.pipelines.lanes import Lane
from docassist.pipelines.storage.database import Database
from tests.conftest import Service, sse_events, xquad_article
from tests.inprocess import InProcessService, start_in_process

FACT = "The lighthouse keeper of Vardø island is named Ingrid Solberg."


def long_text(tag: str, articles: int = 8) -> bytes:
    """Some forty 300-token chunks of English prose (seconds of embedding on 2 cores, longer
    than INGEST_WAIT_S), with one fact to search for, distinct per `tag`."""
    parts = [f"Report {tag}.", *(xquad_article("en", i) for i in range(articles)), FACT]
    return "\n\n".join(parts).encode()


def post(http: httpx.Client, space: str, name: str, data: bytes) -> httpx.Response:
    return http.post("/ingest", files={"file": (name, data)}, data={"space_id": space}, timeout=60)


@pytest.mark.slow
def test_a_long_upload_is_answered_at_once_with_a_job_whose_progress_moves(
    http: httpx.Client, space: str, service: InProcessService, monkeypatch: pytest.MonkeyPatch
):
    store = service.runtime.search.loaded.uploads.store
    reads: list[str] = []
    real_get = store.get

    def counted_get(job_id: str) -> UploadJob | None:  # the real read, counted
        reads.append(job_id)
        return real_get(job_id)

    monkeypatch.setattr(store, "get", counted_get)
    started = time.monotonic()
    r = post(http, space, "report.txt", long_text(space))
    answered_s = time.monotonic() - started
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "upload" and job["status"] in ("pending", "running")
    assert r.headers["Location"] == f"/jobs/{job['job_id']}"
    assert answered_s < 15, f"the 202 took {answered_s:.1f}s; INGEST_WAIT_S is 3"
    # the listing does not show it yet: nothing half-indexed is visible
    listed = http.get("/documents", params={"space_id": space}).json()["documents"]
    assert job["doc_id"] not in [d["doc_id"] for d in listed]

    reads.clear()
    stream = http.get(f"/jobs/{job['job_id']}/events", timeout=300)
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    events = sse_events(stream.text)
    name, last = events[-1]
    assert name == "complete", events[-3:]
    # the upload runs in the service's process: its progress is pushed to the stream as it is
    # written; the job is read from the database once, when the stream starts
    assert len(reads) == 1 and len(events) > 3, (reads, [n for n, _ in events])
    embedding = [d["progress"] for n, d in events if n == "progress" and d["progress"]["stage"] == "embedding"]
    assert len(embedding) >= 2, [d["progress"] for _, d in events]
    done = [p["done"] for p in embedding]
    assert done == sorted(done) and done[-1] > done[0], done
    assert {p["total"] for p in embedding} == {last["result"]["chunks"]} and last["result"]["chunks"] >= 20
    assert last["status"] == "done" and last["result"]["language"] == "en" and last["result"]["duplicate"] is False

    assert http.get(f"/jobs/{job['job_id']}").json()["status"] == "done"
    listed = http.get("/documents", params={"space_id": space}).json()["documents"]
    assert [d["doc_id"] for d in listed] == [job["doc_id"]]
    hits = http.post("/search", json={"q": "Who keeps the lighthouse on Vardø?", "space_id": space, "top_k": 3})
    assert hits.status_code == 200 and "Ingrid Solberg" in hits.json()["sources"][0]["text"], hits.text


@pytest.mark.slow
def test_a_long_upload_with_tags_is_answered_at_once_and_its_document_is_tagged_when_its_job_is_done(
    http: httpx.Client, space: str
):
    form = {"space_id": space, "tags": ["отчёты", "2026"]}
    r = http.post("/ingest", files={"file": ("tagged.txt", long_text("tagged"))}, data=form, timeout=60)
    assert r.status_code == 202, "tags do not make the client wait"
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 300
    while (job := http.get(f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "done", job
    doc = http.get(f"/documents/{job['doc_id']}", params={"space_id": space}).json()
    assert doc["tags"] == ["отчёты", "2026"], doc
    hits = http.post("/search", json={"q": FACT, "space_id": space, "tags": ["ОТЧЁТЫ"]}).json()["sources"]
    assert hits and hits[0]["doc_id"] == job["doc_id"], "a scope by its tag finds it as soon as the job is done"


def test_a_short_upload_is_still_answered_with_the_document(http: httpx.Client, space: str):
    r = post(http, space, "note.txt", "Короткая заметка о Байкале и Ангаре.".encode())
    assert r.status_code == 200, r.text
    assert r.json()["chunks"] == 1 and r.json()["language"] == "ru"


@pytest.mark.slow
def test_deleting_a_document_while_it_is_ingested_stops_it_and_leaves_nothing(http: httpx.Client, space: str):
    r = post(http, space, "report.txt", long_text(space))
    assert r.status_code == 202, r.text
    job_id, doc_id = r.json()["job_id"], r.json()["doc_id"]
    deadline = time.monotonic() + 120
    while http.get(f"/jobs/{job_id}").json()["progress"]["stage"] != "embedding":
        assert time.monotonic() < deadline, "the upload never reached embedding"
        time.sleep(0.3)

    deleted = http.delete(f"/documents/{doc_id}", params={"space_id": space})
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True, deleted.text
    job = http.get(f"/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["error"]["code"] == "cancelled", job
    time.sleep(3)  # the upload does not finish afterwards and bring the document back
    assert http.get("/documents", params={"space_id": space}).json()["documents"] == []
    assert http.get(f"/documents/{doc_id}", params={"space_id": space}).status_code == 404
    hits = http.post("/search", json={"q": "Who keeps the lighthouse on Vardø?", "space_id": space})
    assert hits.json()["sources"] == []
    again = post(http, space, "report.txt", long_text(space))  # and it can be uploaded again
    assert again.status_code in (200, 202) and again.json()["doc_id"] == doc_id
    assert http.delete(f"/documents/{doc_id}", params={"space_id": space}).status_code == 200


def test_following_an_unknown_job_is_404_before_any_event(http: httpx.Client):
    r = http.get(f"/jobs/{uuid.uuid4().hex}/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_a_document_with_more_chunks_than_max_document_chunks_is_refused_before_embedding(tmp_path: Path):
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    # no store and no embedding model: the refusal comes before either is used
    ingestor = Ingestor(None, Registry(db), None, 1 << 20, extract_document, max_chunks=5)  # type: ignore[arg-type]
    with pytest.raises(TooManyChunks) as refused:
        ingestor.ingest("s", "long.txt", long_text("cap", articles=2))
    assert refused.value.details["limit"] == 5 and refused.value.details["chunks"] > 5
    assert "MAX_DOCUMENT_CHUNKS" in refused.value.message and status_of(refused.value) == 413
    assert Registry(db).list("s") == []


def test_upload_jobs_of_a_process_that_died_are_failed_and_a_live_ones_are_kept(tmp_path: Path):
    db = Database.for_data_dir(None, tmp_path)
    db.migrate()
    store = UploadStore(db)
    dead = store.create("s", "d1", "a.txt", False, process_name(2**22 + 12345))  # no such pid
    alive = store.create("s", "d2", "b.txt", False, process_name())
    elsewhere = store.create("s", "d3", "c.txt", False, "another-host:1")
    failed = store.reap(60, gone_here)
    assert [j.job_id for j in failed] == [dead.job_id]
    lost = store.get(dead.job_id)
    assert lost is not None and lost.status == "failed" and lost.error is not None and lost.error.code == "upload_lost"
    assert store.get(alive.job_id).status == "pending" and store.get(elsewhere.job_id).status == "pending"
    # another machine's job (and any) is failed once nobody has touched it for the silence allowed
    assert {j.job_id for j in store.reap(0, gone_here)} == {alive.job_id, elsewhere.job_id}


# ---------------------------------------------------------------------- fairness between spaces
@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    """One upload at a time, five waiting: six places, three of them one space's share (the default,
    half); every upload answered 202 at once, so the test sets the order in which they arrive."""
    svc = start_in_process(
        tmp_path_factory.mktemp("fair_uploads"), UPLOAD_WORKERS="1", UPLOAD_QUEUE="5", INGEST_WAIT_S="0", **llama_env
    )
    yield svc
    svc.stop()


def note(tag: str) -> bytes:
    """A one-chunk upload, distinct per `tag`."""
    return f"Note {tag}. {FACT}".encode()


def finished(http: httpx.Client, job_id: str, timeout_s: float = 300) -> dict:
    """The job once it has ended."""
    deadline = time.monotonic() + timeout_s
    while (job := http.get(f"/jobs/{job_id}").json())["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout_s}s"
        time.sleep(0.3)
    return job


def test_a_burst_from_one_space_leaves_another_space_its_upload_and_its_turn(one_worker: Service):
    """Space A sends six uploads, the first a long one: three are taken (its share of the six places),
    three refused with their own code; space B's upload is still taken, and runs as soon as A's
    first ends, before A's two waiting ones."""
    with one_worker.client() as http:
        burst = [post(http, "tenant_a", "a0.txt", long_text("a0", articles=4))]  # runs at once, for seconds
        burst += [post(http, "tenant_a", f"a{i}.txt", note(f"a{i}")) for i in range(1, 6)]
        taken, refused = [r for r in burst if r.status_code == 202], [r for r in burst if r.status_code != 202]
        assert len(taken) == 3, [(r.status_code, r.text[:200]) for r in burst]
        for r in refused:
            assert r.status_code == 429 and r.json()["error"]["code"] == "space_upload_queue_full", r.text
            assert int(r.headers["Retry-After"]) >= 1 and r.json()["error"]["details"]["per_space"] == 3
        other = post(http, "tenant_b", "b.txt", note("b"))
        assert other.status_code == 202, f"space B was refused while A's burst waited: {other.text}"
        assert http.get(f"/jobs/{taken[0].json()['job_id']}").json()["status"] == "running", "A's first still runs"

        first, a1, a2 = (finished(http, r.json()["job_id"]) for r in taken)
        b = finished(http, other.json()["job_id"])
        assert {j["status"] for j in (first, a1, a2, b)} == {"done"}, [first, a1, a2, b]
        # one worker: uploads end in the order they started
        order = sorted([("a0", first), ("a1", a1), ("a2", a2), ("b", b)], key=lambda p: p[1]["updated_at"])
        assert [name for name, _ in order] == ["a0", "b", "a1", "a2"], order
        listed = http.get("/documents", params={"space_id": "tenant_b"}).json()["documents"]
        assert [d["doc_id"] for d in listed] == [b["doc_id"]]
        # with A's uploads done, its places are back: A is taken again
        again = post(http, "tenant_a", "a6.txt", note("a6"))
        assert again.status_code == 202 and finished(http, again.json()["job_id"])["status"] == "done", again.text


class HeldWork:
    """An upload's work on a real lane: records the order uploads start in, and holds those whose
    name starts with `held` until `gate` is set."""

    def __init__(self, held: str) -> None:
        self.held, self.gate, self.started = held, threading.Event(), list[str]()

    def __call__(self, name: str) -> str:
        self.started.append(name)
        if name.startswith(self.held):
            self.gate.wait(30)
        return name


def test_waiting_uploads_start_by_turns_between_spaces_and_a_dropped_one_gives_its_place_back():
    """The queue over a real one-thread lane, every call held behind the first: each space gets its
    share, a cancelled waiting upload frees its place, and the waiting ones start one space after
    another (FIFO would have started a0 a1 a2 b0 b1 c0)."""

    async def arrive_then_run() -> list[str]:
        lane = Lane("uploads", workers=1, queue=5)
        queue = UploadQueue(lane, per_space=3)
        work = HeldWork(held="")  # every upload held
        try:
            futures = [queue.submit("a", work, f"a{i}") for i in range(3)]
            with pytest.raises(SpaceUploadQueueFull):
                queue.submit("a", work, "a3")
            futures += [queue.submit("b", work, f"b{i}") for i in range(3)]
            with pytest.raises(UploadQueueFull) as full:
                queue.submit("c", work, "c0")
            assert full.value.code == "upload_queue_full"
            futures.pop().cancel()  # b2, still waiting
            await asyncio.sleep(0)
            futures.append(queue.submit("c", work, "c0"))
            work.gate.set()
            assert await asyncio.gather(*futures) == ["a0", "a1", "a2", "b0", "b1", "c0"]
            assert queue.held == 0
            return work.started
        finally:
            lane.close()

    assert asyncio.run(arrive_then_run()) == ["a0", "b0", "c0", "a1", "b1", "a2"]


def test_a_space_leaves_the_last_upload_worker_to_another_spaces_upload():
    """Two workers: a space's burst runs one upload at a time, and another space's upload is served
    at once by the worker left free, not after the burst's running document ends."""

    async def burst_then_one() -> list[str]:
        lane = Lane("uploads", workers=2, queue=4)
        queue = UploadQueue(lane, per_space=3)
        work = HeldWork(held="a")  # space a's uploads held, b's not
        try:
            burst = [queue.submit("a", work, f"a{i}") for i in range(3)]
            await asyncio.sleep(0.2)
            assert work.started == ["a0"]  # a1 waits though a worker is free: it is kept for other spaces
            assert await asyncio.wait_for(queue.submit("b", work, "b0"), 5) == "b0"
            work.gate.set()
            assert await asyncio.gather(*burst) == ["a0", "a1", "a2"]
            return work.started
        finally:
            work.gate.set()
            lane.close()

    assert asyncio.run(burst_then_one()) == ["a0", "b0", "a1", "a2"]
