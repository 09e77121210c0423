"""Retrieval quality on XQuAD: hit@k and MRR, Russian, English, and Russian questions over
English documents.

Each XQuAD paragraph is ingested as its own document (through the real ingestion path into
a Qdrant Edge shard in a temporary folder); a question hits when a retrieved chunk belongs to
its paragraph. The same questions are scored three ways: dense only, BM25 only and the
hybrid that `/search` serves (DBSF fusion; RRF shown beside it), so the README can show what each part contributes.

    docassist eval retrieval --split dev            # choose here
    docassist eval retrieval --split test --out evals/results/retrieval-test.json
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from qdrant_client import models
from tqdm import tqdm

from docassist.evals.datasets import read_jsonl
from docassist.pipelines.documents.ingestion import Ingestor
from docassist.pipelines.runtime import ingestion_only
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import load_settings

KS = (1, 3, 5, 10)


def index_paragraphs(ingestor: Ingestor, space: str, rows: list[dict]) -> dict[str, str]:
    """Ingest each distinct paragraph; return context → doc_id."""
    doc_of: dict[str, str] = {}
    contexts = dict.fromkeys(r["context"] for r in rows)
    for i, context in enumerate(tqdm(contexts, desc="ingest", unit="paragraph", leave=False)):
        doc_of[context] = ingestor.ingest(space, f"p{i}.txt", context.encode("utf-8")).record.doc_id
    return doc_of


def ranked_doc_ids(store: Store, embed, question: str, space: str, mode: str, depth: int) -> list[str]:
    """Documents of the `depth` best chunks for one retriever: dense, bm25, hybrid-rrf or hybrid (DBSF)."""
    if mode.startswith("hybrid"):
        fusion = models.Fusion.RRF if mode == "hybrid-rrf" else models.Fusion.DBSF
        hits = store.search(embed.get_query_embedding(question), question, space, depth, fusion=fusion)
    elif mode == "dense":
        hits = store.search(embed.get_query_embedding(question), "", space, depth, only="dense")
    else:
        hits = store.search([], question, space, depth, only="bm25")
    return [h.node.ref_doc_id or "" for h in hits]


def score(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    out = {f"hit@{k}": round(sum(1 for r in ranks if r is not None and r < k) / n, 4) for k in KS}
    out["mrr@10"] = round(sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n, 4)
    out["questions"] = n
    return out


def evaluate(split: str, evaldata: Path, limit: int | None = None) -> dict:
    settings = load_settings({"DATA_DIR": tempfile.mkdtemp(prefix="docassist-eval-"), "MAX_UPLOAD_MB": "50"})
    with ingestion_only(settings) as ingestor:
        return _evaluate(ingestor, split, evaldata, limit)


def _evaluate(ingestor: Ingestor, split: str, evaldata: Path, limit: int | None) -> dict:
    store, embed = ingestor.store, ingestor.embed_model
    ru, en = read_jsonl(evaldata, "xquad_ru", split), read_jsonl(evaldata, "xquad_en", split)
    if limit:
        ru, en = ru[:limit], en[:limit]
    t0 = time.perf_counter()
    ru_docs, en_docs = index_paragraphs(ingestor, "xq_ru", ru), index_paragraphs(ingestor, "xq_en", en)
    index_s = time.perf_counter() - t0
    en_by_qid = {r["id"].rsplit("-", 1)[0]: r for r in en}
    tasks = {
        "ru": [(r["question"], ru_docs[r["context"]], "xq_ru") for r in ru],
        "en": [(r["question"], en_docs[r["context"]], "xq_en") for r in en],
        "ru→en": [
            (r["question"], en_docs[en_by_qid[r["id"].rsplit("-", 1)[0]]["context"]], "xq_en")
            for r in ru
            if r["id"].rsplit("-", 1)[0] in en_by_qid
        ],
    }
    report: dict = {
        "split": split,
        "paragraphs": {"ru": len(ru_docs), "en": len(en_docs)},
        "index_seconds": round(index_s, 1),
        "embedding": embed.model_name,
        "results": {},
    }
    for mode in ("dense", "bm25", "hybrid-rrf", "hybrid"):
        for task, items in tasks.items():
            ranks: list[int | None] = []
            started = time.perf_counter()
            for question, gold, space in tqdm(items, desc=f"{mode}/{task}", unit="question", leave=False):
                ranked = ranked_doc_ids(store, embed, question, space, mode, 10)
                ranks.append(ranked.index(gold) if gold in ranked else None)
            result = score(ranks)
            result["ms_per_query"] = round((time.perf_counter() - started) * 1000 / max(len(items), 1), 1)
            report["results"][f"{mode}/{task}"] = result
    return report


def to_markdown(report: dict) -> str:
    lines = [
        f"XQuAD {report['split']} — {report['paragraphs']['ru']} ru / {report['paragraphs']['en']} en "
        f"paragraphs as documents, embedding {report['embedding']}",
        "",
        "| retriever | questions → documents | hit@1 | hit@3 | hit@5 | hit@10 | MRR@10 | ms/query |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in report["results"].items():
        mode, task = key.split("/")
        lines.append(
            f"| {mode} | {task} | {r['hit@1']:.3f} | {r['hit@3']:.3f} | {r['hit@5']:.3f} | "
            f"{r['hit@10']:.3f} | {r['mrr@10']:.3f} | {r['ms_per_query']} |"
        )
    return "\n".join(lines)
