"""Which passage an answer cites, on every XQuAD question of a split, without the LLM.

A citation is chosen by the question, not by the answer (`pipelines/answers/citations.py`), so
the quote `/ask` would show can be measured on every question in minutes: the split's
paragraphs are ingested through the real ingestion path into a space per language (all of its
articles, as `eval answers` does), each question is retrieved as `/ask` retrieves it (its top 3
chunks) and the real `Citer` picks the quotes. Scored: the first quote contains a gold answer
span, with single sentences only and with the two-sentence passages `/ask` weighs too; beside
them the ceiling (a gold span in some sentence of the chunks), how often the first quote is a
pair, and its length.

    docassist eval citations --split dev            # choose here
    docassist eval citations --split test --out evals/results/citations-test.json
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from docassist.evals.answers import contains, interval
from docassist.evals.datasets import read_jsonl
from docassist.pipelines.answers.citations import PAIRS_AROUND, Citer, split_sentences
from docassist.pipelines.lanes import Lane
from docassist.pipelines.runtime import ingestion_only
from docassist.pipelines.search.retrieval import Retriever
from docassist.pipelines.settings import load_settings

TOP_K = 3  # /ask's default in the evaluations
MEASURES = ("quote_contains", "sentence_contains", "ceiling")


def evaluate(split: str, evaldata: Path, limit: int | None = None) -> dict[str, Any]:
    settings = load_settings({"DATA_DIR": tempfile.mkdtemp(prefix="docassist-eval-"), "MAX_UPLOAD_MB": "50"})
    started = time.perf_counter()
    lane = Lane("eval", 1)
    rows: list[dict[str, Any]] = []
    try:
        with ingestion_only(settings) as ingestor:
            retriever = Retriever(ingestor.store, ingestor.embed_model, lane)
            singles, pairs = Citer(ingestor.embed_model, lane, pairs_around=0), Citer(ingestor.embed_model, lane)
            for lang in ("ru", "en"):
                questions = read_jsonl(evaldata, f"xquad_{lang}", split)[:limit]
                space = f"xquad-{lang}"
                for i, context in enumerate(dict.fromkeys(q["context"] for q in questions)):
                    ingestor.ingest(space, f"p{i}.txt", context.encode("utf-8"))
                for q in tqdm(questions, desc=f"citations xquad_{lang} ({split})", unit="question"):
                    rows.append(asyncio.run(_score(q, lang, space, retriever, singles, pairs)))
    finally:
        lane.close()
    return {
        "split": split,
        "limit": limit,
        "top_k": TOP_K,
        "pairs_around": PAIRS_AROUND,
        "embedding": settings.profile.embedding.kind,
        "seconds": round(time.perf_counter() - started, 1),
        "results": {lang: _summary([r for r in rows if r["language"] == lang]) for lang in ("ru", "en")},
        "questions": rows,
    }


async def _score(q: dict, lang: str, space: str, retriever: Retriever, singles: Citer, pairs: Citer) -> dict:
    golds = [a["text"] for a in q["answers"]]
    sources = (await retriever.search(q["question"], space, TOP_K)).sources
    evidence = await singles.evidence(q["question"], sources)
    alone = await singles.cite(evidence, sources)
    cited = await pairs.cite(evidence, sources)
    quote = cited[0].quote if cited else ""
    return {
        "language": lang,
        "id": q["id"],
        "question": q["question"],
        "gold": golds,
        "quote": quote,
        "sentences_in_quote": len(split_sentences(quote)),
        "quote_contains": contains(quote, golds),
        "sentence_contains": contains(alone[0].quote, golds) if alone else 0.0,
        "ceiling": float(any(contains(s.text, golds) for s in evidence.sentences)),
        "support": round(evidence.support, 4),
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measures = {k: [float(r[k]) for r in rows] for k in MEASURES}
    return {
        "questions": len(rows),
        **{k: round(statistics.fmean(v), 4) for k, v in measures.items()},
        "ci95": {k: interval(v) for k, v in measures.items()},
        "pair_share": round(statistics.fmean(float(r["sentences_in_quote"] > 1) for r in rows), 4),
        "quote_chars": round(statistics.fmean(len(r["quote"]) for r in rows)),
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Citations on XQuAD, {report['split']} split — every question, top {report['top_k']} chunks, "
        f"embedding `{report['embedding']}`, pairs around the best {report['pairs_around']} sentences, "
        f"{report['seconds']} s (no LLM: the quote is chosen by the question)",
        "",
        "| questions | n | first quote contains gold | the best single sentence | "
        "ceiling: gold in a sentence of the chunks | first quotes of two sentences | quote chars |",
        "|---|---|---|---|---|---|---|",
    ]
    for lang, r in report["results"].items():
        ci = r["ci95"]
        cells = [f"{r[k]:.2f} [{ci[k][0]:.2f}–{ci[k][1]:.2f}]" for k in MEASURES]
        tail = f"{r['pair_share']:.2f} | {r['quote_chars']}"
        lines.append(f"| {lang} | {r['questions']} | {' | '.join(cells)} | {tail} |")
    lines += ["", "Brackets: 95% bootstrap confidence intervals."]
    return "\n".join(lines)
