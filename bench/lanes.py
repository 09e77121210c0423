"""Interactive work beside bulk work: reads must not queue behind uploads or heavy queries.

- `/search` p50/p99 while idle, then while one large document (hundreds of chunks) is being
  embedded through `/ingest`. Query embeddings have their own engine (lane) and the embedding of
  uploads another, so a question waits for CPU, not for the upload's batches. Goal: p99 during
  the upload within a few times idle, not the seconds an embedding batch takes.
- Reads of another space (`/health`, `/documents`, `GET /documents/{id}`, `/search`) while six
  uploads of `lanes_upload_kb` KB each are posted at once (answered 202, then embedded two at a
  time at a lower CPU priority): the slowest read, against the same reads idle. Goal ≤ 2 s.
- A normal search while three clients send the longest queries allowed (512 tokens of CJK, the
  costliest to embed) without pause: its slowest time. Goal ≤ 2 s. A 4,000-character CJK query
  is refused before any embedding; its answer time is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from docassist.bench.core import Context, Result, ingest
from docassist.bench.corpus import DocFactory, xquad_questions
from docassist.bench.stats import percentile, ratio, summary

SPACE = "bench_lanes"
Read = Callable[[httpx.Client], httpx.Response]


def searches(ctx: Context, questions: list[str], stop: threading.Event | None = None, n: int = 0) -> list[float]:
    times: list[float] = []
    i = 0
    while (stop is not None and not stop.is_set()) or (stop is None and i < n):
        started = time.perf_counter()
        ctx.http.post("/search", json={"q": questions[i % len(questions)], "space_id": SPACE}).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
        i += 1
        time.sleep(0.05)
    return times


def run(ctx: Context) -> Result:
    res = Result("lanes", "Searches during a large upload")
    factory = DocFactory(seed=21)
    name, text = factory.next(10)
    ingest(ctx.http, SPACE, name, text)
    questions = list(xquad_questions("ru")[:50])
    idle = searches(ctx, questions, n=ctx.sizes.lanes_searches)
    big_name, big_text = factory.next(ctx.sizes.lanes_paragraphs)
    done = threading.Event()
    upload: dict[str, float] = {}

    def upload_big() -> None:
        started = time.perf_counter()
        body = ingest(ctx.http, SPACE, big_name, big_text)
        upload["seconds"], upload["chunks"] = time.perf_counter() - started, body["chunks"]
        done.set()

    thread = threading.Thread(target=upload_big)
    thread.start()
    time.sleep(0.5)  # the upload is past extraction and into embedding
    during = searches(ctx, questions, stop=done)
    thread.join()
    res.add(
        "search_p99_during_upload",
        "/search p99 during a large upload vs idle",
        ratio(percentile(during, 99), percentile(idle, 99)),
        baseline=f"idle p99 {percentile(idle, 99):.0f} ms (n={len(idle)})",
        goal=("<=", 5.0),
        context=f"during: p50 {percentile(during, 50):.0f} ms, p99 {percentile(during, 99):.0f} ms (n={len(during)}); "
        f"upload {upload['chunks']} chunks in {upload['seconds']:.1f}s",
    )
    res.data = {"idle_ms": summary(idle, 1), "during_upload_ms": summary(during, 1), "upload": upload}
    reads_during_uploads(ctx, res, factory, questions)
    search_beside_heavy_queries(ctx, res, questions)
    return res


def _reads(doc_id: str, questions: list[str]) -> list[Read]:
    q = questions[0]
    return [
        lambda c: c.get("/health"),
        lambda c: c.get("/documents", params={"space_id": SPACE}),
        lambda c: c.get(f"/documents/{doc_id}", params={"space_id": SPACE}),
        lambda c: c.post("/search", json={"q": q, "space_id": SPACE}),
    ]


def _probe(ctx: Context, reads: list[Read], until: Callable[[], bool]) -> list[float]:
    times: list[float] = []
    with ctx.service.client(timeout=60) as c:
        while True:  # one round at least
            for read in reads:
                started = time.perf_counter()
                read(c).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            if until():
                return times
            time.sleep(0.05)


def reads_during_uploads(ctx: Context, res: Result, factory: DocFactory, questions: list[str]) -> None:
    doc_id = ctx.http.get("/documents", params={"space_id": SPACE}).json()["documents"][0]["doc_id"]
    reads = _reads(doc_id, questions)
    rounds = iter(range(9))
    idle = _probe(ctx, reads, lambda: next(rounds, None) is None)
    texts = []
    for _ in range(6):
        _, text = factory.next(ctx.sizes.lanes_upload_kb * 2)  # a paragraph is about 500 bytes
        texts.append(text.encode()[: ctx.sizes.lanes_upload_kb * 1024].decode(errors="ignore"))
    started = time.perf_counter()
    # over two spaces: one space holds at most half the upload places (UPLOADS_PER_SPACE's default)
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda i: ctx.http.post(
                    "/ingest",
                    files={"file": (f"six_{i}.txt", texts[i].encode())},
                    data={"space_id": f"bench_six_{i % 2}"},
                ),
                range(6),
            )
        )
    answered_s = time.perf_counter() - started
    jobs = [a.json()["job_id"] for a in answers if a.status_code == 202]

    def uploads_done() -> bool:
        return all(ctx.http.get(f"/jobs/{j}").json()["status"] not in ("pending", "running") for j in jobs)

    during = _probe(ctx, reads, uploads_done)
    took_s = time.perf_counter() - started
    statuses = sorted(a.status_code for a in answers)
    res.add(
        "reads_max_during_six_uploads",
        f"slowest read of another space while six {ctx.sizes.lanes_upload_kb} KB uploads run",
        max(during) if during else 0.0,
        unit="ms",
        baseline=f"idle max {max(idle):.0f} ms, p99 {percentile(idle, 99):.0f} ms (n={len(idle)})",
        goal=("<=", 2000.0),
        context=f"during: p50 {percentile(during, 50):.0f} ms, p99 {percentile(during, 99):.0f} ms (n={len(during)}) "
        f"over {took_s:.1f}s; the six /ingest answered in {answered_s:.1f}s with {statuses}",
    )
    res.data["six_uploads"] = {"idle_ms": summary(idle, 1), "during_ms": summary(during, 1), "statuses": statuses}


def search_beside_heavy_queries(ctx: Context, res: Result, questions: list[str]) -> None:
    heavy = "漢字検索の負荷試験" * 50  # 450 CJK characters: near the 512-token limit of e5
    refused_started = time.perf_counter()
    refused = ctx.http.post("/search", json={"q": "漢" * 4000, "space_id": SPACE})
    refused_ms = (time.perf_counter() - refused_started) * 1000
    stop = threading.Event()
    heavy_times: list[float] = []

    def hammer() -> None:
        with ctx.service.client(timeout=120) as c:
            while not stop.is_set():
                started = time.perf_counter()
                r = c.post("/search", json={"q": heavy, "space_id": SPACE})
                if r.status_code == 200:
                    heavy_times.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    deadline = time.monotonic() + ctx.sizes.lanes_heavy_seconds
    normal: list[float] = []
    while time.monotonic() < deadline:
        normal += searches(ctx, questions, n=1)
    stop.set()
    for t in threads:
        t.join()
    res.add(
        "search_max_beside_heavy_queries",
        "slowest normal /search while three clients send 512-token CJK queries",
        max(normal) if normal else 0.0,
        unit="ms",
        goal=("<=", 2000.0),
        context=f"normal p50 {percentile(normal, 50):.0f} ms (n={len(normal)}); heavy queries p50 "
        f"{percentile(heavy_times, 50):.0f} ms (n={len(heavy_times)}); a 4,000-character CJK query: "
        f"{refused.status_code} in {refused_ms:.0f} ms",
    )
    res.data["heavy_queries"] = {"normal_ms": summary(normal, 1), "heavy_ms": summary(heavy_times, 1)}
