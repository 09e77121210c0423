"""Searches during a large upload: interactive work must not queue behind bulk work.

`/search` p50/p99 while idle, then while one large document (hundreds of chunks) is being embedded
through `/ingest`. Query embeddings have their own engine (lane) and the embedding of uploads
another, so a question waits for CPU, not for the upload's batches. Goal: p99 during the upload
within a few times idle, not the seconds an embedding batch takes.
"""

from __future__ import annotations

import threading
import time

from docassist.bench.core import Context, Result, ingest
from docassist.bench.corpus import DocFactory, xquad_questions
from docassist.bench.stats import percentile, ratio, summary

SPACE = "bench_lanes"


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
    return res
