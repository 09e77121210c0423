"""Load: many clients at once for a fixed time, over every route that needs no LLM, plus a few
summaries — what a busy team does to one backend.

N client threads (50 in a full run) for T seconds (60) each loop over: upload a distinct small
document, list the space, read a document, search, read a cached summary, read the health, and
now and then delete one of their own documents; a few of them also ask for a fresh summary. The
benchmark then checks what the service holds against what the clients did: every document a
client was told it uploaded (and did not delete) is listed exactly once, and none it deleted is.

Figures: status codes by route (goal: no 5xx but designed 503s), p50/p99 latency per route, lost
and duplicated documents (goal: 0), and `/search` p99 under this load against idle.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import httpx

from docassist.bench.core import Context, Result, ingest, summarize
from docassist.bench.corpus import DocFactory, xquad_questions
from docassist.bench.stats import percentile, ratio, summary

SPACE = "bench_load"
DESIGNED_503 = {"llm_unavailable", "store_unavailable", "vector_store_unavailable"}


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.undesigned: list[str] = []
        self.kept: dict[str, str] = {}  # doc_id → filename the client was told it uploaded
        self.deleted: set[str] = set()

    def note(self, route: str, started: float, r: httpx.Response) -> None:
        with self.lock:
            self.latency[route].append((time.perf_counter() - started) * 1000)
            self.status[route][r.status_code] += 1
            if r.status_code >= 500:
                code = (
                    r.json().get("error", {}).get("code")
                    if r.headers.get("content-type", "").startswith("application/json")
                    else None
                )
                if not (r.status_code == 503 and code in DESIGNED_503):
                    self.undesigned.append(f"{route} {r.status_code} {r.text[:200]}")


def client_loop(
    ctx: Context, n: int, until: float, tally: Tally, factory: DocFactory, cached_doc: str, summarizes: bool
) -> None:
    rnd = random.Random(n)
    questions = xquad_questions("ru") + xquad_questions("en")
    mine: list[str] = []
    with httpx.Client(base_url=ctx.service.url, timeout=600) as http:
        while time.monotonic() < until:
            with tally.lock:
                name, text = factory.next(2)
            started = time.perf_counter()
            r = http.post("/ingest", files={"file": (name, text.encode())}, data={"space_id": SPACE, "wait": "true"})
            tally.note("POST /ingest", started, r)
            if r.status_code == 200:
                doc_id = r.json()["doc_id"]
                mine.append(doc_id)
                with tally.lock:
                    tally.kept[doc_id] = name
            for route, call in (
                ("GET /documents", lambda: http.get("/documents", params={"space_id": SPACE})),
                (
                    "GET /documents/{id}",
                    lambda: (
                        http.get(f"/documents/{rnd.choice(mine)}", params={"space_id": SPACE})
                        if mine
                        else http.get(f"/documents/{cached_doc}", params={"space_id": SPACE})
                    ),
                ),
                ("POST /search", lambda: http.post("/search", json={"q": rnd.choice(questions), "space_id": SPACE})),
                (
                    "POST /summarize (cached)",
                    lambda: http.post("/summarize", json={"doc_id": cached_doc, "space_id": SPACE}),
                ),
                ("GET /health", lambda: http.get("/health")),
            ):
                started = time.perf_counter()
                tally.note(route, started, call())
            if len(mine) > 3 and rnd.random() < 0.2:
                victim = mine.pop(rnd.randrange(len(mine)))
                started = time.perf_counter()
                r = http.delete(f"/documents/{victim}", params={"space_id": SPACE})
                tally.note("DELETE /documents/{id}", started, r)
                if r.status_code == 200:
                    with tally.lock:
                        tally.kept.pop(victim, None)
                        tally.deleted.add(victim)
            if summarizes and mine:
                started = time.perf_counter()
                r = http.post("/summarize", json={"doc_id": mine[-1], "space_id": SPACE})
                tally.note("POST /summarize (fresh)", started, r)


def run(ctx: Context) -> Result:
    res = Result("load", "Load: many clients over the routes that need no LLM")
    clients, seconds, summarizers = ctx.sizes.load_clients, ctx.sizes.load_seconds, ctx.sizes.load_summarizers
    factory = DocFactory(seed=11)
    name, text = factory.next(2)
    cached_doc = ingest(ctx.http, SPACE, name, text)["doc_id"]
    summarize(ctx.http, SPACE, cached_doc, force=False)
    questions = xquad_questions("en")
    idle = []
    for q in questions[:30]:
        started = time.perf_counter()
        ctx.http.post("/search", json={"q": q, "space_id": SPACE}).raise_for_status()
        idle.append((time.perf_counter() - started) * 1000)
    tally = Tally()
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(ctx, n, until, tally, factory, cached_doc, n < summarizers))
        for n in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = ctx.http.get("/documents", params={"space_id": SPACE}).json()["documents"]
    listed_ids = Counter(d["doc_id"] for d in listed)
    expected = set(tally.kept) | {cached_doc}
    lost = sorted(expected - set(listed_ids))
    duplicated = sorted(d for d, n in listed_ids.items() if n > 1)
    resurrected = sorted(tally.deleted & set(listed_ids))
    requests = sum(sum(c.values()) for c in tally.status.values())
    res.add(
        "undesigned_5xx",
        f"5xx other than designed 503s, of {requests:,} requests",
        len(tally.undesigned),
        unit="",
        goal=("<=", 0),
        context="; ".join(tally.undesigned[:3]),
    )
    res.add(
        "lost_documents",
        "documents uploaded and not deleted but missing afterwards",
        len(lost),
        unit="",
        goal=("<=", 0),
        context=f"{len(expected):,} expected, {len(listed_ids):,} listed",
    )
    res.add(
        "duplicated_documents",
        "documents listed twice, or listed after their delete",
        len(duplicated) + len(resurrected),
        unit="",
        goal=("<=", 0),
    )
    search = tally.latency["POST /search"]
    res.add(
        "search_p99_under_load",
        f"/search p99 with {clients} clients vs idle",
        ratio(percentile(search, 99), percentile(idle, 99)),
        baseline=f"idle p99 {percentile(idle, 99):.0f} ms (n={len(idle)})",
        context=f"loaded p50 {percentile(search, 50):.0f} ms, p99 {percentile(search, 99):.0f} ms (n={len(search)})",
    )
    for route, values in tally.latency.items():
        s = summary(values, 1)
        res.add(
            f"latency_{route}",
            f"{route}: p50 / p99 under load",
            s["p99"],
            unit="ms",
            context=f"p50 {s['p50']} ms, n={s['n']}, statuses {dict(tally.status[route])}",
        )
    res.data = {
        "clients": clients,
        "seconds": seconds,
        "summarizing_clients": summarizers,
        "requests": requests,
        "statuses": {route: dict(c) for route, c in tally.status.items()},
        "latency_ms": {route: summary(v, 1) for route, v in tally.latency.items()},
        "idle_search_ms": summary(idle, 1),
        "lost": lost,
        "duplicated": duplicated,
        "listed_after_delete": resurrected,
        "undesigned_5xx": tally.undesigned[:20],
    }
    return res
