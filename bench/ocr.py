"""OCR: scanned pages per second through `POST /ingest` vs Tesseract alone on the same pages, and
the same for the service's extraction step alone.

Each round makes an image-only PDF of `ocr_pages` A4 pages of Russian and English text (rendered at
300 dpi, `evals/scans.py`), renders its pages here as the service does (pypdfium2, 300 dpi,
greyscale) and runs the `tesseract` command on each with the service's languages, thread setting and
priority — the baseline, one page at a time as a person runs it, and again two pages at a time as
the service's two extraction workers read them — then uploads the PDF; the order alternates between
rounds. The upload's time includes rendering, OCR, chunking, embedding (overlapping the OCR) and
writing; the service's log says how much of it was extraction (sandbox, rendering, OCR) and how many
chunks were embedded while pages were still being read. Goal: pages/s ≥ 0.9 × Tesseract alone.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import tempfile
import time
from pathlib import Path

from docassist.bench.core import Context, Result
from docassist.bench.stats import ratio
from docassist.evals.datasets import EVALDATA, xquad_article
from docassist.evals.scans import ScanStyle, image_pdf, render_pages
from docassist.pipelines.documents.formats.ocr import LANGUAGES, OMP_THREADS, render_pdf_page
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.environment import process_environment
from docassist.pipelines.priorities import BULK_NICE

SPACE = "bench_ocr"
ROUNDS = 2


def scan(pages: int, round_no: int) -> bytes:
    """An image-only PDF of `pages` pages, alternating Russian and English articles."""
    images = []
    for i in range(pages):
        lang = "ru" if i % 2 == 0 else "en"
        text = xquad_article(lang, round_no * pages + i, "dev", _evaldata())[:2200]
        images += render_pages(text, ScanStyle(dpi=300))[:1]
    return image_pdf(images, 300)


def _evaldata() -> Path:
    sample = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "evaldata"
    return EVALDATA if (EVALDATA / "xquad_ru").exists() else sample


def tesseract_alone(pdf: bytes, workdir: Path, side_by_side: int = 1) -> float:
    """Seconds for the `tesseract` command over the PDF's pages, rendered as the service renders
    them, `side_by_side` pages at a time."""
    limits = ExtractLimits()
    files = []
    for index in range(_page_count(pdf)):
        path = workdir / f"page-{index}.png"
        render_pdf_page(pdf, index, limits).save(path)
        files.append(path)
    env = {**process_environment(), "OMP_THREAD_LIMIT": OMP_THREADS}

    def read(path: Path) -> None:  # at the extraction workers' priority, as the service runs it
        subprocess.run(
            ["tesseract", str(path), "-", "-l", "+".join(LANGUAGES)],
            capture_output=True,
            check=True,
            env=env,
            preexec_fn=lambda: os.nice(BULK_NICE),
        )

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(side_by_side) as pool:
        list(pool.map(read, files))
    return time.perf_counter() - started


def _page_count(pdf: bytes) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        return len(document)
    finally:
        document.close()


def run(ctx: Context) -> Result:
    res = Result("ocr", "OCR of scans")
    pages = 2 if ctx.quick else 6
    api_s: list[float] = []
    alone_s: list[float] = []
    pair_s: list[float] = []
    with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
        for round_no in range(ROUNDS):
            pdf = scan(pages, round_no)
            for side in ("api", "alone") if round_no % 2 == 0 else ("alone", "api"):
                if side == "api":
                    started = time.perf_counter()
                    r = ctx.http.post(
                        "/ingest",
                        files={"file": (f"scan-{round_no}.pdf", pdf)},
                        data={"space_id": SPACE, "wait": "true"},
                        timeout=600,
                    )
                    r.raise_for_status()
                    api_s.append(time.perf_counter() - started)
                else:
                    alone_s.append(tesseract_alone(pdf, Path(tmp)))
                    pair_s.append(tesseract_alone(pdf, Path(tmp), side_by_side=2))
            ctx.log(
                f"round {round_no}: {pages} pages, /ingest {api_s[-1]:.2f}s, tesseract alone {alone_s[-1]:.2f}s, "
                f"two at a time {pair_s[-1]:.2f}s"
            )
    total = pages * ROUNDS
    api_rate, alone_rate, pair_rate = total / sum(api_s), total / sum(alone_s), total / sum(pair_s)
    logged = ctx.service.events("[INGEST] Indexed")[-ROUNDS:]
    extract_s = sum(e["timing"]["extract_s"] for e in logged)
    embed_s = sum(e["timing"]["embed_s"] for e in logged)
    chunks = sum(e["chunks"] for e in logged)
    ahead = sum(e["ahead"] for e in ctx.service.events("[INGEST] Embedded ahead")[-ROUNDS:])
    baseline = f"tesseract -l {'+'.join(LANGUAGES)} on the same 300 dpi pages, one at a time: {alone_rate:.3f} pages/s"
    context = (
        f"/ingest {api_rate:.3f} pages/s over {total} pages in {ROUNDS} uploads; {ahead} of {chunks} chunks embedded "
        f"while pages were being read, the rest in {embed_s:.1f} s after the last page; extraction (render, OCR, "
        f"embedding ahead) {extract_s:.1f} s"
    )
    res.add(
        "api_pages_per_s_over_tesseract",
        "scanned pages/s through /ingest vs Tesseract alone",
        ratio(api_rate, alone_rate),
        baseline=baseline,
        goal=(">=", 0.9),
        context=context,
    )
    res.add(
        "api_pages_per_s_over_tesseract_two_at_a_time",
        "scanned pages/s through /ingest vs Tesseract alone two pages at a time (as the two workers read)",
        ratio(api_rate, pair_rate),
        baseline=f"the same pages, two tesseract processes at a time: {pair_rate:.3f} pages/s",
        context="the cost of everything but OCR (rendering, chunking, embedding, writing) when OCR has both cores",
    )
    res.add(
        "extract_pages_per_s_over_tesseract",
        "scanned pages/s of the service's extraction step (sandbox, render, OCR, embedding ahead) vs Tesseract alone",
        ratio(total / extract_s, alone_rate),
        baseline=baseline,
        context=f"extraction {total / extract_s:.3f} pages/s, from the service's [INGEST] Indexed records",
    )
    res.data = {
        "pages": total,
        "api_s": [round(x, 3) for x in api_s],
        "alone_s": [round(x, 3) for x in alone_s],
        "two_at_a_time_s": [round(x, 3) for x in pair_s],
        "chunks": chunks,
        "embedded_ahead": ahead,
        "service_extract_s": round(extract_s, 3),
        "service_embed_s": round(embed_s, 3),
    }
    return res
