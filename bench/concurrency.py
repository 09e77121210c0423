"""Concurrency: N simultaneous `/summarize` of different documents, against the same N one
after another (baseline), with the service probed throughout.

Figures: throughput (concurrent / sequential), the slowest request against the whole
sequential run (with one llama.cpp slot, requests queue: the last one cannot finish before
all the work is done), and two probes. `GET /documents/{id}` does the same work idle and
under load (event loop and database only), so its ratio shows whether the event loop stays
responsive while summaries run. `GET /health` does different work in the two states — idle it
asks llama.cpp (`GET /v1/models`), Qdrant and the database; under load llama.cpp is busy with
our calls and is answered from their in-flight record without being asked — so its two
latencies are reported side by side, not as a ratio.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from docassist.bench.core import Context, Result, ingest, server_ms, summarize
from docassist.bench.corpus import paragraph_doc
from docassist.bench.stats import median, ratio, summary

SPACE = "bench_concurrency"
PROBE_INTERVAL_S = 0.2


class Prober:
    """Polls /health and a document route until stopped; client and server milliseconds."""

    def __init__(self, ctx: Context, doc_id: str) -> None:
        self.ctx, self.doc_id = ctx, doc_id
        self.health: list[float] = []
        self.health_status: list[str] = []
        self.route: list[float] = []
        self.route_server: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def probe(self) -> None:
        with self.ctx.service.client(timeout=60) as http:
            started = time.perf_counter()
            r = http.get("/health")
            self.health.append((time.perf_counter() - started) * 1000)
            self.health_status.append(f"{r.status_code} {r.json().get('status')}")
            started = time.perf_counter()
            r = http.get(f"/documents/{self.doc_id}", params={"space_id": SPACE})
            self.route.append((time.perf_counter() - started) * 1000)
            self.route_server.append(server_ms(r))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(PROBE_INTERVAL_S)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(ctx: Context) -> Result:
    res = Result("concurrency", "Concurrency")
    n = ctx.sizes.concurrency_docs
    docs = [ingest(ctx.http, SPACE, f"para_{i}.txt", paragraph_doc(i * 7)) for i in range(n)]
    idle = Prober(ctx, docs[0]["doc_id"])
    for _ in range(ctx.sizes.health_probes):
        idle.probe()
        time.sleep(0.05)

    ctx.log(f"sequential: {n} summaries")
    seq_lat, seq_tokens = [], []
    started = time.perf_counter()
    for d in docs:
        seconds, body = summarize(ctx.http, SPACE, d["doc_id"], force=True)
        seq_lat.append(seconds)
        seq_tokens.append(body["usage"]["completion_tokens"])
    seq_wall = time.perf_counter() - started

    ctx.log(f"concurrent: {n} summaries at once")

    def one(doc_id: str) -> tuple[float, int]:
        with ctx.service.client() as http:
            seconds, body = summarize(http, SPACE, doc_id, force=True)
            return seconds, body["usage"]["completion_tokens"]

    with Prober(ctx, docs[0]["doc_id"]) as loaded, ThreadPoolExecutor(n) as pool:
        started = time.perf_counter()
        outcomes = list(pool.map(one, [d["doc_id"] for d in docs]))
        conc_wall = time.perf_counter() - started
    conc_lat = [s for s, _ in outcomes]
    conc_tokens = [t for _, t in outcomes]

    lat = summary(conc_lat, 2)
    hi, hl = summary(idle.health, 1), summary(loaded.health, 1)
    ri, rl = summary(idle.route, 1), summary(loaded.route, 1)
    res.add(
        "throughput_concurrent_over_sequential",
        f"throughput, {n} concurrent vs one at a time",
        ratio(seq_wall, conc_wall),
        baseline=f"sequential: {n / seq_wall:.3f} summaries/s ({seq_wall:.1f}s)",
        context=f"concurrent: {n / conc_wall:.3f} summaries/s ({conc_wall:.1f}s)",
    )
    res.add(
        "slowest_over_sequential_total",
        "slowest concurrent request vs whole sequential run",
        ratio(lat["max"], seq_wall),
        baseline=f"sequential total {seq_wall:.1f}s",
        context=f"latency p50 {lat['p50']}s, p99 {lat['p99']}s, max {lat['max']}s; sequential per request "
        f"median {median(seq_lat):.2f}s",
    )
    res.add(
        "health_p99_idle_ms",
        "GET /health p99 idle (asks llama.cpp, Qdrant and the database)",
        hi["p99"],
        "ms",
        context=f"p50 {hi['p50']} ms (n={hi['n']})",
    )
    res.add(
        "health_p99_loaded_ms",
        "GET /health p99 under load (llama.cpp busy: from its in-flight record; Qdrant and the database asked)",
        hl["p99"],
        "ms",
        context=f"p50 {hl['p50']} ms (n={hl['n']}); statuses: "
        + ", ".join(f"{s} ×{loaded.health_status.count(s)}" for s in sorted(set(loaded.health_status))),
    )
    res.add(
        "route_p99_loaded_over_idle",
        "GET /documents/{id} p99 under load vs idle (event loop)",
        ratio(rl["p99"], ri["p99"]),
        baseline=f"idle p99 {ri['p99']} ms",
        context=f"loaded p50 {rl['p50']} ms, p99 {rl['p99']} ms, "
        f"server p99 {summary(loaded.route_server, 2)['p99']} ms",
    )
    res.add(
        "completion_tokens_concurrent_over_sequential",
        "summary length (completion tokens), concurrent vs sequential",
        ratio(sum(conc_tokens), sum(seq_tokens)),
        baseline=f"sequential {sum(seq_tokens)} tokens",
        context="well below 1 would mean summaries cut short under load",
    )
    res.data = {
        "docs": n,
        "sequential_s": [round(x, 3) for x in seq_lat],
        "concurrent_s": [round(x, 3) for x in conc_lat],
        "sequential_completion_tokens": seq_tokens,
        "concurrent_completion_tokens": conc_tokens,
        "health_idle_ms": hi,
        "health_loaded_ms": hl,
        "health_loaded_status": loaded.health_status,
        "route_idle_ms": ri,
        "route_loaded_ms": rl,
    }
    return res
