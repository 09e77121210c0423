"""OCR: scanned pages per second through `POST /ingest` vs Tesseract alone on the same pages, and
the same for the service's extraction step alone.

Each round makes an image-only PDF of `ocr_pages` A4 pages of Russian and English text (rendered at
300 dpi, `evals/scans.py`), renders its pages here as the service does (pypdfium2, 300 dpi,
greyscale) and runs the `tesseract` command on each with the service's languages, thread setting and
priority — the baseline — then uploads the PDF; the order alternates between rounds. The upload's time
includes rendering, OCR, chunking, embedding and writing; the service's log says how much of it was
extraction (sandbox, rendering, OCR) and how much embedding. Goal: pages/s ≥ 0.9 × Tesseract alone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from docassist.bench.core import Context, Result
from docassist.bench.stats import ratio
from docassist.evals.datasets import EVALDATA, xquad_article
from docassist.evals.scans import ScanStyle, image_pdf, render_pages
from docassist.pipelines.documents.extract import ExtractLimits
from docassist.pipelines.documents.formats.ocr import LANGUAGES, OMP_THREADS, render_pdf_page
from docassist.pipelines.documents.sandbox import WORKER_NICE

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


def tesseract_alone(pdf: bytes, workdir: Path) -> float:
    """Seconds for the `tesseract` command over the PDF's pages, rendered as the service renders them."""
    limits = ExtractLimits()
    files = []
    for index in range(_page_count(pdf)):
        path = workdir / f"page-{index}.png"
        render_pdf_page(pdf, index, limits).save(path)
        files.append(path)
    env = {**os.environ, "OMP_THREAD_LIMIT": OMP_THREADS}
    started = time.perf_counter()
    for path in files:  # at the extraction workers' priority, as the service runs it
        subprocess.run(
            ["tesseract", str(path), "-", "-l", "+".join(LANGUAGES)],
            capture_output=True,
            check=True,
            env=env,
            preexec_fn=lambda: os.nice(WORKER_NICE),
        )
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
            ctx.log(f"round {round_no}: {pages} pages, /ingest {api_s[-1]:.2f}s, tesseract alone {alone_s[-1]:.2f}s")
    total = pages * ROUNDS
    api_rate, alone_rate = total / sum(api_s), total / sum(alone_s)
    logged = ctx.service.events("[INGEST] Indexed")[-ROUNDS:]
    extract_s = sum(e["timing"]["extract_s"] for e in logged)
    embed_s = sum(e["timing"]["embed_s"] for e in logged)
    baseline = f"tesseract -l {'+'.join(LANGUAGES)} on the same 300 dpi pages: {alone_rate:.3f} pages/s"
    res.add(
        "api_pages_per_s_over_tesseract",
        "scanned pages/s through /ingest vs Tesseract alone",
        ratio(api_rate, alone_rate),
        baseline=baseline,
        goal=(">=", 0.9),
        context=f"/ingest {api_rate:.3f} pages/s over {total} pages in {ROUNDS} uploads, of which the service's "
        f"embedding {embed_s:.1f} s and its extraction (render, OCR) {extract_s:.1f} s",
    )
    res.add(
        "extract_pages_per_s_over_tesseract",
        "scanned pages/s of the service's extraction step (sandbox, render, OCR) vs Tesseract alone",
        ratio(total / extract_s, alone_rate),
        baseline=baseline,
        goal=(">=", 0.9),
        context=f"extraction {total / extract_s:.3f} pages/s, from the service's [INGEST] Indexed records",
    )
    res.data = {
        "pages": total,
        "api_s": [round(x, 3) for x in api_s],
        "alone_s": [round(x, 3) for x in alone_s],
        "service_extract_s": round(extract_s, 3),
        "service_embed_s": round(embed_s, 3),
    }
    return res
