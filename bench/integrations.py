"""Integrations: what the OpenAI-compatible API and `/metrics` cost.

`/v1/chat/completions` against `/ask` for the same question over the same space, in alternating
order after a KV-cache flush each (the benchmark service decodes greedily, so both generate the
same tokens: their completion tokens are reported beside the ratio). Goal: median of the
pairwise wall-time ratios ≤ 1.05.

`GET /metrics` with many documents and jobs: small documents ingested through the real path
and finished (`done`/`failed`) job rows written to the service's own database — rows that no
worker picks up, so no summary runs while the scrapes are timed. Goal: median scrape ≤ 20 ms
(client wall time, the whole response).
"""

from __future__ import annotations

import time

from docassist.bench.core import Context, Result, ingest
from docassist.bench.stats import median, percentile, spread
from docassist.pipelines.errors import JobError
from docassist.pipelines.storage.database import Database
from docassist.pipelines.summaries.events import JobProgress
from docassist.pipelines.summaries.jobs.store import JobStore

SPACE = "bench_integrations"
QUESTION = "Which river flows out of Lake Baikal?"
TEXT = (
    "Lake Baikal is the deepest lake on Earth, more than 1,600 metres deep. It lies in Siberia, in Russia. "
    "The Angara is the only river that flows out of Lake Baikal; hundreds of rivers flow into it."
)
SCRAPES = 100


def _ask(ctx: Context) -> tuple[float, int]:
    started = time.perf_counter()
    r = ctx.http.post("/ask", json={"q": QUESTION, "space_id": SPACE, "mode": "auto", "top_k": 5})
    seconds = time.perf_counter() - started
    r.raise_for_status()
    return seconds, r.json()["usage"]["completion_tokens"]


def _chat(ctx: Context) -> tuple[float, int]:
    body = {"model": f"space:{SPACE}", "messages": [{"role": "user", "content": QUESTION}]}
    started = time.perf_counter()
    r = ctx.http.post("/v1/chat/completions", json=body)
    seconds = time.perf_counter() - started
    r.raise_for_status()
    return seconds, r.json()["usage"]["completion_tokens"]


def run(ctx: Context) -> Result:
    res = Result("integrations", "Integrations")
    ingest(ctx.http, SPACE, "baikal.txt", TEXT)
    _ask(ctx)  # warm: the first call of a space pays for loading what later calls reuse
    sides = {"ask": _ask, "chat": _chat}
    seconds: dict[str, list[float]] = {"ask": [], "chat": []}
    tokens: dict[str, list[int]] = {"ask": [], "chat": []}
    for r in range(ctx.sizes.integrations_repeats):
        for side in ("ask", "chat") if r % 2 == 0 else ("chat", "ask"):
            ctx.llama.flush()
            s, n = sides[side](ctx)
            seconds[side].append(s)
            tokens[side].append(n)
        ctx.log(f"repeat {r}: /ask {seconds['ask'][-1]:.2f}s, /v1/chat/completions {seconds['chat'][-1]:.2f}s")
    pairs = [c / a for c, a in zip(seconds["chat"], seconds["ask"], strict=True)]
    res.add(
        "chat_over_ask",
        f"/v1/chat/completions / /ask wall time, same question, median of {len(pairs)}",
        round(median(pairs), 3),
        baseline=f"/ask: median {median(seconds['ask']):.2f}s",
        goal=("<=", 1.05),
        context=f"pairwise ratios {spread(pairs)}; /v1 median {median(seconds['chat']):.2f}s; completion tokens "
        f"/ask {sorted(set(tokens['ask']))} vs /v1 {sorted(set(tokens['chat']))}",
    )

    docs, jobs = ctx.sizes.metrics_documents, ctx.sizes.metrics_jobs
    started = time.perf_counter()
    for i in range(docs):
        ingest(ctx.http, f"{SPACE}_{i % 10}", f"note_{i}.txt", f"Note {i}: the lake froze on day {i} of the winter.")
    ingest_s = time.perf_counter() - started
    store = JobStore(Database.for_data_dir(None, ctx.service.data_dir))
    for i in range(jobs):
        job = store.create(SPACE, f"doc{i:06d}", "en")
        if i % 4:
            store.finish(job.job_id, None, JobProgress())
        else:
            store.fail(job.job_id, None, JobError(code="internal_error", message="a bench job"), retryable=False)
    store.db.engine.dispose()
    ctx.http.get("/metrics").raise_for_status()
    times, size = [], 0
    for _ in range(SCRAPES):
        t0 = time.perf_counter()
        r = ctx.http.get("/metrics")
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        size = len(r.content)
    res.add(
        "metrics_scrape_ms",
        f"GET /metrics with {docs:,} documents and {jobs:,} jobs, median of {SCRAPES}",
        round(median(times), 2),
        "ms",
        goal=("<=", 20),
        context=f"p95 {percentile(times, 95):.2f} ms; {size:,} bytes; {docs:,} documents ingested in {ingest_s:.0f}s",
    )
    res.data = {
        "ask_s": [round(x, 3) for x in seconds["ask"]],
        "chat_s": [round(x, 3) for x in seconds["chat"]],
        "pair_ratios": [round(p, 4) for p in pairs],
        "completion_tokens": tokens,
        "scrape_ms": [round(t, 2) for t in times],
        "documents": docs,
        "jobs": jobs,
    }
    return res
