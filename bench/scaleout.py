"""Past one process: what PostgreSQL and Redis cost and what more processes buy, on this machine.

Every extra process shares a fresh PostgreSQL database (`DOCASSIST_BENCH_POSTGRES`, the machine's
server by default) and a flushed Redis database (`DOCASSIST_BENCH_REDIS`), and calls the benchmark
service's own llama.cpp server, as backends share an LLM server in production. In one run:

1. **Shared cache lookup.** Cached `/summarize` on a backend on PostgreSQL, alternating with the
   same request on the benchmark's own backend on SQLite: the cache read (`lookup_ms`) and the
   server time (`Server-Timing`), p50 and p99 on both sides.
2. **Background summary jobs, one worker vs two.** Documents ingested with `generate_summary` on a
   backend that runs no jobs itself; the time until every job is done with one `docassist worker`,
   then with two (fresh documents, same sizes).
3. **`/search`, one backend vs two.** The same clients for the same time against one backend, then
   spread over two that hold the same documents (each backend keeps its own Qdrant Edge shard here;
   a Qdrant server would be shared).
"""

from __future__ import annotations

import os
import threading
import time

import httpx

from docassist.bench.core import Context, Result, ingest, server_ms, summarize
from docassist.bench.corpus import DocFactory, xquad_questions
from docassist.bench.service import Service, fresh_postgres_database, fresh_redis, start_service
from docassist.bench.stats import ratio, summary

SPACE = "bench_scaleout"
POSTGRES = os.environ.get("DOCASSIST_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("DOCASSIST_BENCH_REDIS", "redis://127.0.0.1:6379/6")
TEXT = (
    "Нижний Новгород стоит при слиянии Оки и Волги. Нижегородский кремль построен в начале "
    "XVI века и ни разу не был взят штурмом."
)


def cache_lookup(ctx: Context, res: Result, backend: Service) -> None:
    n = ctx.sizes.scaleout_cached_requests
    sides = {"postgresql": backend.client(), "sqlite": ctx.http}
    bodies = {}
    for side, http in sides.items():
        doc = ingest(http, SPACE, "novgorod.txt", TEXT)
        summarize(http, SPACE, doc["doc_id"], force=False)
        bodies[side] = {"doc_id": doc["doc_id"], "space_id": SPACE}
    lookup: dict[str, list[float]] = {side: [] for side in sides}
    server: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(n):
        for side, http in sides.items():
            r = http.post("/summarize", json=bodies[side])
            assert r.status_code == 200 and r.json()["cached"], r.text
            lookup[side].append(r.json()["timing"]["lookup_ms"])
            server[side].append(server_ms(r))
    sides["postgresql"].close()
    pg, lite = summary(lookup["postgresql"]), summary(lookup["sqlite"])
    pg_server, lite_server = summary(server["postgresql"]), summary(server["sqlite"])
    res.add(
        "cache_lookup_p50_pg_over_sqlite",
        "summary cache read p50, PostgreSQL vs SQLite",
        ratio(pg["p50"], lite["p50"]),
        baseline=f"SQLite p50 {lite['p50']} ms, p99 {lite['p99']} ms",
        context=f"PostgreSQL p50 {pg['p50']} ms, p99 {pg['p99']} ms over {n} alternating requests",
    )
    res.add(
        "cached_summarize_p99_pg",
        "cached /summarize server time p99 on PostgreSQL",
        pg_server["p99"],
        "ms",
        goal=("<", 10.0),
        context=f"p50 {pg_server['p50']} ms; on SQLite p50 {lite_server['p50']} / p99 {lite_server['p99']} ms",
    )
    res.data["cache"] = {
        "lookup_ms": {"postgresql": pg, "sqlite": lite},
        "server_ms": {"postgresql": pg_server, "sqlite": lite_server},
    }


def jobs_done_s(ctx: Context, backend: Service, factory: DocFactory, label: str) -> float:
    """Ingest the documents with `generate_summary`, then wait until every job is done."""
    with backend.client() as http:
        jobs = []
        for _ in range(ctx.sizes.scaleout_jobs):
            name, text = factory.next(2)
            r = http.post(
                "/ingest",
                files={"file": (f"{label}-{name}", text.encode(), "text/plain")},
                data={"space_id": SPACE, "generate_summary": "true", "wait": "true"},
            )
            assert r.status_code == 200, r.text
            jobs.append(r.json()["job_id"])
        started = time.perf_counter()
        pending = set(jobs)
        deadline = started + 1800
        while pending:
            assert time.perf_counter() < deadline, f"jobs not done: {sorted(pending)}"
            for job_id in list(pending):
                job = http.get(f"/jobs/{job_id}").json()
                assert job["status"] != "failed", job
                if job["status"] == "done":
                    pending.discard(job_id)
            time.sleep(0.2)
        return time.perf_counter() - started


def search_rate(ctx: Context, backends: list[Service], questions: list[str]) -> dict[str, float]:
    """Searches per second with the benchmark's clients spread round-robin over `backends`."""
    clients, seconds = ctx.sizes.scaleout_search_clients, ctx.sizes.scaleout_search_seconds
    done: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    until = time.perf_counter() + seconds

    def loop(i: int) -> None:
        with httpx.Client(base_url=backends[i % len(backends)].url, timeout=120) as http:
            k = i
            while time.perf_counter() < until:
                started = time.perf_counter()
                r = http.post("/search", json={"q": questions[k % len(questions)], "space_id": SPACE, "top_k": 5})
                with lock:
                    (done if r.status_code == 200 else failures).append(
                        (time.perf_counter() - started) * 1000 if r.status_code == 200 else r.status_code
                    )
                k += clients

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    return {"per_s": round(len(done) / seconds, 2), **summary(done)}


def run(ctx: Context) -> Result:
    res = Result("scaleout", "Past one process: PostgreSQL, Redis, more workers and backends")
    llama = {"LLAMA_SERVER_URL": ctx.service.llama_url, "LLAMA_SERVER_API_KEY": ctx.service.llama_key}
    factory = DocFactory(seed=23)
    with fresh_postgres_database(POSTGRES, "docassist_bench") as database, fresh_redis(REDIS) as redis_url:
        shared = {"DATABASE_URL": database, "REDIS_URL": redis_url, **llama, **dict(ctx.sizes.service_env)}
        processes: list[Service] = []
        try:
            a = start_service(ctx.workdir / "scaleout-a", JOB_WORKERS="0", **shared)
            processes.append(a)
            ctx.log(f"cache lookup: {ctx.sizes.scaleout_cached_requests} requests on PostgreSQL and on SQLite")
            cache_lookup(ctx, res, a)

            processes.append(start_service(ctx.workdir / "scaleout-w1", command="worker", **shared))
            ctx.log(f"{ctx.sizes.scaleout_jobs} background summaries, one worker")
            one = jobs_done_s(ctx, a, factory, "one")
            processes.append(start_service(ctx.workdir / "scaleout-w2", command="worker", **shared))
            ctx.log(f"{ctx.sizes.scaleout_jobs} background summaries, two workers")
            two = jobs_done_s(ctx, a, factory, "two")
            jobs = ctx.sizes.scaleout_jobs
            res.add(
                "jobs_throughput_two_over_one_worker",
                "background summaries per second, two workers vs one",
                ratio(one, two),
                baseline=f"one worker: {jobs} jobs in {one:.1f}s",
                context=f"two workers: {jobs} jobs in {two:.1f}s; both call one llama.cpp server, "
                "which runs one request at a time (the LLM slot is shared through Redis)",
            )
            res.data["jobs"] = {"jobs": jobs, "one_worker_s": round(one, 2), "two_workers_s": round(two, 2)}

            b = start_service(ctx.workdir / "scaleout-b", JOB_WORKERS="0", **shared)
            processes.append(b)
            paragraphs = [factory.next(1) for _ in range(ctx.sizes.scaleout_search_docs)]
            for backend in (a, b):  # each holds the same documents in its own Qdrant Edge shard
                with backend.client() as http:
                    for name, text in paragraphs:
                        ingest(http, SPACE, f"search-{name}", text)
            questions = xquad_questions("ru") + xquad_questions("en")
            ctx.log(f"/search: {ctx.sizes.scaleout_search_clients} clients, one backend then two")
            single = search_rate(ctx, [a], questions)
            double = search_rate(ctx, [a, b], questions)
            res.add(
                "search_throughput_two_over_one_backend",
                "/search per second, two backends vs one",
                ratio(double["per_s"], single["per_s"]),
                baseline=f"one backend: {single['per_s']}/s, p50 {single['p50']} ms, p99 {single['p99']} ms",
                context=f"two backends: {double['per_s']}/s, p50 {double['p50']} ms, p99 {double['p99']} ms; "
                f"{ctx.sizes.scaleout_search_clients} clients for {ctx.sizes.scaleout_search_seconds}s each; "
                f"{os.cpu_count()} CPU cores",
            )
            res.data["search"] = {"one_backend": single, "two_backends": double}
        finally:
            for process in reversed(processes):
                process.stop()
    return res
