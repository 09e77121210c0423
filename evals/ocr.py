"""OCR quality on scans made from the evaluation data's own text: character error rate, and what
OCR costs retrieval.

Each XQuAD paragraph (Russian and English) is rendered as an A4 page (`scans.py`, DejaVu Sans 12 pt)
and saved as an image-only PDF, at 300 and at 150 dpi, straight and as a flatbed scanner leaves it
(turned 0.7°, slightly blurred); the pipeline's own extraction OCRs it (Tesseract `rus+eng`). CER is
the edit distance between the OCR'd text and the paragraph, whitespace collapsed, over the
paragraph's length. Retrieval: the paragraphs are ingested once as text and once as the 300 dpi
scans, and hit@1 of the XQuAD questions is compared between the two.

    docassist eval ocr --split dev --limit 5
    docassist eval ocr --split test --limit 20 --out evals/results/ocr-test.json
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from docassist.evals.datasets import read_jsonl
from docassist.evals.retrieval import ranked_doc_ids
from docassist.evals.scans import ScanStyle, image_pdf, render_pages
from docassist.pipelines.documents.extract import extract_document, normalize
from docassist.pipelines.runtime import ingestion_only
from docassist.pipelines.settings import load_settings

CONDITIONS = {
    "300dpi": ScanStyle(dpi=300),
    "300dpi-skewed-blurred": ScanStyle(dpi=300, rotate_degrees=0.7, blur_radius=1.0),
    "150dpi": ScanStyle(dpi=150),
    "150dpi-skewed-blurred": ScanStyle(dpi=150, rotate_degrees=0.7, blur_radius=0.5),
}
GOAL_CER_300 = 0.02


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance by characters (two rows)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(ocr: str, truth: str) -> float:
    """Character error rate, whitespace collapsed on both sides (line breaks are the renderer's)."""
    said, meant = " ".join(ocr.split()), " ".join(normalize(truth).split())
    return edit_distance(said, meant) / max(1, len(meant))


def scan_of(text: str, style: ScanStyle) -> bytes:
    return image_pdf(render_pages(text, style), style.dpi)


def evaluate(split: str, evaldata: Path, limit: int | None = None) -> dict:
    settings = load_settings({"DATA_DIR": tempfile.mkdtemp(prefix="docassist-eval-"), "MAX_UPLOAD_MB": "50"})
    limit = limit or 20
    report: dict = {"split": split, "paragraphs_per_language": limit, "goal_cer_300dpi": GOAL_CER_300}
    cers: dict[str, dict[str, list[float]]] = {c: {"ru": [], "en": []} for c in CONDITIONS}
    pages_s: list[float] = []
    retrieval: dict[str, dict] = {}
    with ingestion_only(settings) as ingestor:
        for lang in ("ru", "en"):
            rows = read_jsonl(evaldata, f"xquad_{lang}", split)
            paragraphs = list(dict.fromkeys(r["context"] for r in rows))[:limit]
            kept = set(paragraphs)
            questions = [r for r in rows if r["context"] in kept]
            text_docs, scan_docs = {}, {}
            for i, paragraph in enumerate(tqdm(paragraphs, desc=f"ocr/{lang}", unit="paragraph", leave=False)):
                text_docs[paragraph] = ingestor.ingest(f"text_{lang}", f"p{i}.txt", paragraph.encode()).record.doc_id
                started = time.perf_counter()
                record = ingestor.ingest(f"scan_{lang}", f"p{i}.pdf", scan_of(paragraph, CONDITIONS["300dpi"])).record
                pages_s.append(time.perf_counter() - started)
                scan_docs[paragraph] = record.doc_id
                cers["300dpi"][lang].append(cer(ingestor.registry.text(f"scan_{lang}", record.doc_id), paragraph))
                for name, style in CONDITIONS.items():
                    if name != "300dpi":
                        cers[name][lang].append(
                            cer(extract_document("p.pdf", scan_of(paragraph, style)).text, paragraph)
                        )
            for kind, docs in (("text", text_docs), ("scan", scan_docs)):
                hits = 0
                for row in questions:
                    ranked = ranked_doc_ids(
                        ingestor.store, ingestor.embed_model, row["question"], f"{kind}_{lang}", "hybrid", 1
                    )
                    hits += bool(ranked) and ranked[0] == docs[row["context"]]
                retrieval.setdefault(lang, {"questions": len(questions)})[f"hit@1_{kind}"] = round(
                    hits / max(1, len(questions)), 4
                )
    report["cer"] = {
        name: {lang: round(sum(v) / max(1, len(v)), 4) for lang, v in by_lang.items()}
        | {"worst": round(max(v for vs in by_lang.values() for v in vs), 4)}
        for name, by_lang in cers.items()
    }
    report["retrieval_hit@1"] = retrieval
    report["seconds_per_page_300dpi_ingest"] = round(sum(pages_s) / max(1, len(pages_s)), 2)
    return report


def to_markdown(report: dict) -> str:
    lines = [
        f"OCR on XQuAD {report['split']} — {report['paragraphs_per_language']} ru + "
        f"{report['paragraphs_per_language']} en paragraphs rendered as A4 scans (DejaVu Sans 12 pt), "
        "Tesseract rus+eng through the ingestion pipeline",
        "",
        "| scan | CER ru | CER en | worst page |",
        "|---|---|---|---|",
    ]
    for name, c in report["cer"].items():
        lines.append(f"| {name} | {c['ru']:.2%} | {c['en']:.2%} | {c['worst']:.2%} |")
    lines += [
        "",
        f"Goal: CER ≤ {report['goal_cer_300dpi']:.0%} at 300 dpi. "
        f"Ingest of a 300 dpi page: {report['seconds_per_page_300dpi_ingest']} s (OCR, chunk, embed, write).",
        "",
        "| questions → paragraphs | questions | hit@1 as text | hit@1 as 300 dpi scans |",
        "|---|---|---|---|",
    ]
    for lang, r in report["retrieval_hit@1"].items():
        lines.append(f"| {lang} | {r['questions']} | {r['hit@1_text']:.3f} | {r['hit@1_scan']:.3f} |")
    return "\n".join(lines)
