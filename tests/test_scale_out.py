"""Past one process, with real processes and real servers: two `docassist serve` backends (A, B) and
`docassist worker` processes sharing the machine's PostgreSQL (a fresh database) and Redis (a flushed
database). A runs the embedded llama.cpp server; B and the workers call that same server, as
backends share an LLM server in production.

A Qdrant server cannot run on these machines, so each backend keeps its own Qdrant local mode
(in its own DATA_DIR) and the checks across processes use what needs no vectors: documents,
summaries, streams and jobs (a document ingested on A is searchable on A only here; with
`QDRANT_URL` every backend shares one collection)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from docassist.bench.service import Service, sse
from docassist.pipelines.llm import scheduling
from docassist.pipelines.llm.shared_slots import SharedSlots
from tests.conftest import ingest, start_service, xquad_article
from tests.servers import TcpProxy, fresh_postgres_database, fresh_redis

pytestmark = pytest.mark.slow  # backends and workers, each a process of its own

SMALL = {"LLM_CONTEXT_WINDOW": "1024", "JOB_LEASE_S": "6"}


class Cluster:
    def __init__(self, root: Path, database: str, redis: str) -> None:
        self.root, self.shared = root, {"DATABASE_URL": database, "REDIS_URL": redis, **SMALL}
        # A runs no job workers, so that background jobs are provably done by `docassist worker`.
        self.a = start_service(root / "a", JOB_WORKERS="0", **self.shared)
        self.llama = {"LLAMA_SERVER_URL": self.a.llama_url, "LLAMA_SERVER_API_KEY": self.a.llama_key}
        self.b = start_service(root / "b", JOB_WORKERS="0", **self.shared, **self.llama)
        self.workers: list[Service] = []

    def worker(self, name: str, **env: str) -> Service:
        w = start_service(self.root / name, command="worker", **self.shared, **self.llama, **env)
        self.workers.append(w)
        return w

    def stop(self) -> None:
        for svc in (*self.workers, self.b, self.a):
            svc.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fresh_postgres_database() as database, fresh_redis() as redis:
        c = Cluster(tmp_path_factory.mktemp("cluster"), database, redis)
        try:
            yield c
        finally:
            c.stop()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not finished: {job}")


def test_a_job_queued_on_a_is_done_by_the_worker_and_served_from_the_cache_by_b(cluster: Cluster):
    worker = cluster.worker("w1")
    with cluster.a.client() as a, cluster.b.client() as b:
        body = ingest(a, "shared", "kazan.txt", xquad_article("ru", 12).encode(), generate_summary="true").json()
        assert body["summary_pending"] is True
        listed = b.get("/documents", params={"space_id": "shared"}).json()["documents"]
        assert body["doc_id"] in [d["doc_id"] for d in listed], "B lists what A ingested"
        job = wait_job(b, body["job_id"])
        assert job["status"] == "done", job
        cached = b.post("/summarize", json={"doc_id": body["doc_id"], "space_id": "shared"}).json()
        assert cached["cached"] is True and cached["language"] == "ru"
    assert f"job_id={body['job_id']}" in worker.log() and "Background summary done" in worker.log()
    assert "Background summary started" not in cluster.a.log() + cluster.b.log()


def test_one_summary_asked_on_both_backends_is_computed_once(cluster: Cluster):
    with cluster.a.client() as a:
        doc = ingest(a, "twice", "cten.txt", xquad_article("en", 5).encode()).json()
    backends = (cluster.a, cluster.b)
    before = [svc.log().count("[LLM REQUEST") for svc in backends]
    results: dict[str, dict] = {}

    def ask(name: str, svc: Service) -> None:
        with svc.client() as c:
            results[name] = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "twice"}).json()

    threads = [threading.Thread(target=ask, args=(n, s)) for n, s in (("a", cluster.a), ("b", cluster.b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"]["summary"] == results["b"]["summary"] and results["a"]["summary"]
    calls = sum(svc.log().count("[LLM REQUEST") - n for svc, n in zip(backends, before, strict=True))
    computed = [r for r in results.values() if not r["cached"]]
    assert calls == max(r["usage"]["llm_calls"] for r in computed), "one set of LLM calls for both requests"
    done = cluster.a.log().count(f"doc_id={doc['doc_id']} strategy=") + cluster.b.log().count(
        f"doc_id={doc['doc_id']} strategy="
    )
    assert done == 1


def test_a_stream_on_b_follows_every_event_of_a_run_started_on_a(cluster: Cluster):
    with cluster.a.client() as a:
        doc = ingest(a, "streams", "cten.txt", xquad_article("ru", 7).encode()).json()
    request = {"doc_id": doc["doc_id"], "space_id": "streams"}
    b_calls_before = cluster.b.log().count("[LLM REQUEST")
    on_a: list[tuple[str, dict]] = []
    started = threading.Event()

    def follow_a() -> None:
        with (
            httpx.Client(base_url=cluster.a.url, timeout=300) as c,
            c.stream("POST", "/summarize-stream", json=request) as r,
        ):
            for name, data in sse(r):
                on_a.append((name, data))
                started.set()

    thread = threading.Thread(target=follow_a)
    thread.start()
    assert started.wait(60)
    with (
        httpx.Client(base_url=cluster.b.url, timeout=300) as c,
        c.stream("POST", "/summarize-stream", json=request) as r,
    ):
        on_b = list(sse(r))
    thread.join()
    names_b = [n for n, _ in on_b]
    assert names_b[0] == "start" and names_b[-1] == "complete", names_b
    assert "processing" in names_b and "summary" in names_b
    assert on_b[0][1]["strategy"] == "tree" and on_b[0][1]["doc_id"] == doc["doc_id"]
    assert on_b[-1][1]["summary"] == on_a[-1][1]["summary"] and on_b[-1][1]["cached"] is False
    assert [d for n, d in on_b if n == "processing"] == [d for n, d in on_a if n == "processing"]
    assert cluster.b.log().count("[LLM REQUEST") == b_calls_before, "B followed A's run and called no LLM"


def test_a_worker_killed_mid_job_is_replaced_by_another_that_reuses_its_map_results(cluster: Cluster):
    for w in cluster.workers:
        w.stop()
    first = cluster.worker("w2")
    with cluster.a.client() as a:
        body = ingest(a, "resume", "cten.txt", xquad_article("en", 9).encode(), generate_summary="true").json()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            job = a.get(f"/jobs/{body['job_id']}").json()
            if job["progress"]["stage"] == "map" and job["progress"]["done"] >= 1:
                break
            time.sleep(0.2)
        assert job["status"] == "running", job
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        second = cluster.worker("w3", LOG_FORMAT="json")
        job = wait_job(a, body["job_id"])
        assert job["status"] == "done" and job["attempts"] == 2, job
        result = a.post("/summarize", json={"doc_id": body["doc_id"], "space_id": "resume"}).json()
    assert result["cached"] is True
    computed = result["usage"]
    assert computed["resumed_calls"] >= 1, "map results of the killed worker were reused"
    map_calls_by_second = sum(1 for e in second.events("[LLM REQUEST") if e.get("purpose") == "map")
    assert map_calls_by_second == result["timing"]["computed"]["parts"] - computed["resumed_calls"]
    assert "Background job taken over" in second.log() + cluster.a.log() + cluster.b.log()


def test_interactive_calls_overtake_background_calls_across_processes():
    """Two `SharedSlots` on one endpoint stand for two processes (they share nothing but Redis)."""

    async def scenario(url: str) -> list[str]:
        order: list[str] = []
        redis_a, redis_b = Redis.from_url(url), Redis.from_url(url)
        a, b = SharedSlots(redis_a, "http://llm:8000/v1", 1), SharedSlots(redis_b, "http://llm:8000/v1", 1)
        release = asyncio.Event()

        async def hold() -> None:
            async with a.slot():
                order.append("holder")
                await release.wait()

        async def call(slots: SharedSlots, name: str, background: bool) -> None:
            if background:
                with scheduling.background():
                    async with slots.slot():
                        order.append(name)
            else:
                async with slots.slot():
                    order.append(name)

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.1)
        waiting = [
            asyncio.create_task(call(b, "background-1", True)),
            asyncio.create_task(call(a, "background-2", True)),
        ]
        await asyncio.sleep(0.2)
        waiting.append(asyncio.create_task(call(b, "interactive", False)))
        await asyncio.sleep(0.2)
        release.set()
        await asyncio.gather(holder, *waiting)
        await redis_a.aclose()
        await redis_b.aclose()
        return order

    with fresh_redis() as url:
        order = asyncio.run(scenario(url))
    assert order[:2] == ["holder", "interactive"], order


def test_several_processes_on_qdrant_edge_are_refused_at_start(tmp_path: Path):
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "docassist"), "serve", "--workers", "2"],
        env={**os.environ, "DATA_DIR": str(tmp_path), "QDRANT_URL": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Qdrant Edge admits one process per data directory" in proc.stderr


def test_a_database_or_redis_outage_is_a_503_and_the_service_recovers_by_itself(tmp_path: Path):
    with fresh_postgres_database() as database, fresh_redis() as redis_url:
        pg, rd = TcpProxy("127.0.0.1", 5432), TcpProxy("127.0.0.1", 6379)
        svc = start_service(
            tmp_path,
            DATABASE_URL=database.replace("127.0.0.1:5432", f"127.0.0.1:{pg.port}"),
            REDIS_URL=redis_url.replace("127.0.0.1:6379", f"127.0.0.1:{rd.port}"),
        )
        try:
            with svc.client() as c:
                doc = ingest(c, "outage", "kazan.txt", "Казань — столица Татарстана.".encode()).json()
                request = {"doc_id": doc["doc_id"], "space_id": "outage"}
                pg.cut()
                listed = c.get("/documents", params={"space_id": "outage"})
                assert listed.status_code == 503 and listed.json()["error"]["code"] == "store_unavailable"
                assert listed.headers["Retry-After"] == "5"
                health = c.get("/health")
                assert health.status_code == 503 and health.json()["checks"]["database"]["ok"] is False
                pg.restore()
                assert c.get("/documents", params={"space_id": "outage"}).status_code == 200
                rd.cut()
                r = c.post("/summarize", json=request)
                assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
                health = c.get("/health").json()
                assert health["capabilities"]["summaries"] == "down" and health["capabilities"]["search"] == "ok"
                rd.restore()
                deadline = time.monotonic() + 30
                while (r := c.post("/summarize", json=request)).status_code == 503 and time.monotonic() < deadline:
                    time.sleep(1)
                assert r.status_code == 200 and r.json()["summary"], r.text
        finally:
            svc.stop()
            pg.close()
            rd.close()
