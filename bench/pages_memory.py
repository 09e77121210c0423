"""The service's memory while 40 clients ask at once for a page of a large PDF.

`docassist bench --only pages_memory`: the service's resident memory while 40 clients ask at once
for the page of a ~45 MB PDF whose 20 images declare 131,000² pixels each (a decompression-bomb shape),
against its memory just before. The service used to read the whole PDF for each request before it
waited for a worker (873 MB → 2,567 MB, about 42 MB a request); now the render worker reads it from
the database and a few renders wait, the rest refused at once. Goal: ≤ +300 MB.
"""

from __future__ import annotations

import collections
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from docassist.bench.core import Context, Result, mb
from docassist.bench.pdfs import bomb_pdf
from docassist.bench.service import RssSampler

SPACE = "bench_pages_memory"
PARALLEL_PAGES = 40


def run(ctx: Context) -> Result:
    res = Result("pages_memory", "Service memory during 40 parallel page requests of a 45 MB PDF")
    pdf = bomb_pdf("A page: a text layer and twenty huge images.", payload_bytes=2_250_000)
    r = ctx.http.post("/ingest", files={"file": ("probe.pdf", pdf)}, data={"space_id": SPACE, "wait": "true"})
    r.raise_for_status()
    doc_id = r.json()["doc_id"]
    time.sleep(1)  # the upload's buffers released before the baseline is read
    before_kb = ctx.service.rss_kb()
    statuses: collections.Counter[str] = collections.Counter()

    def page(_: int) -> None:
        with httpx.Client(base_url=ctx.service.url, timeout=300) as http:
            answer = http.get(f"/documents/{doc_id}/pages/1", params={"space_id": SPACE})
        code = answer.json()["error"]["code"] if answer.status_code != 200 else "png"
        statuses[f"{answer.status_code} {code}"] += 1

    started = time.perf_counter()
    with RssSampler(ctx.service.pid) as sampler, ThreadPoolExecutor(PARALLEL_PAGES) as pool:
        list(pool.map(page, range(PARALLEL_PAGES)))
    seconds = time.perf_counter() - started
    growth = mb(sampler.peak_kb - before_kb)
    res.add(
        "pages_rss_growth_mb",
        f"service RSS growth during {PARALLEL_PAGES} parallel page requests of a {len(pdf) / 1e6:.0f} MB PDF",
        round(growth, 1),
        "MB",
        baseline=f"RSS before {mb(before_kb):.0f} MB",
        goal=("<=", 300),
        context=f"peak {mb(sampler.peak_kb):.0f} MB; answers in {seconds:.1f}s: "
        + ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items())),
    )
    res.data = {"pdf_bytes": len(pdf), "before_kb": before_kb, "peak_kb": sampler.peak_kb, "statuses": dict(statuses)}
    return res
