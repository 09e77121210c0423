"""`/ask` on XQuAD: answer exact match / F1 against the gold spans, and the answer's language.

Questions are sampled across every article of the split (seeded); all paragraphs of the
articles they come from are ingested into a space per language (with every article when all
questions are asked), and each question goes through the served ask pipeline. SQuAD-style
scoring: lower-case, drop punctuation (and English articles), then exact match and token F1
against the best gold answer; `contains` counts answers in which a gold span occurs — the fair
measure for a generative model that answers in a sentence.

    docassist eval answers --split dev --limit 20
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from docassist.evals.datasets import read_jsonl
from docassist.evals.language import language_verdicts
from docassist.evals.session import eval_session

_PUNCT = set(string.punctuation) | set("«»—–…“”„’")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower().replace("ё", "е") if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_answer(answer: str, golds: list[str]) -> dict[str, float]:
    norm = normalize(answer)
    return {
        "exact_match": float(any(norm == normalize(g) for g in golds)),
        "f1": max(f1(answer, g) for g in golds),
        "contains": float(any(normalize(g) and f" {normalize(g)} " in f" {norm} " for g in golds)),
    }


def sample_questions(questions: list[dict[str, Any]], limit: int | None, seed: int = 7) -> list[dict[str, Any]]:
    """`limit` questions spread over every article: a seeded shuffle of each article's questions,
    then taken round-robin across articles (all questions when `limit` is None)."""
    if limit is None or limit >= len(questions):
        return list(questions)
    rng = random.Random(seed)
    by_article: dict[str, list[dict[str, Any]]] = {}
    for q in questions:
        by_article.setdefault(q["title"], []).append(q)
    for group in by_article.values():
        rng.shuffle(group)
    picked: list[dict[str, Any]] = []
    while len(picked) < limit:
        for group in by_article.values():
            if group and len(picked) < limit:
                picked.append(group.pop())
    return picked


def interval(values: list[float], seed: int = 11, resamples: int = 2000) -> tuple[float, float]:
    """95% bootstrap confidence interval of the mean (percentile method, seeded)."""
    rng = random.Random(seed)
    n = len(values)
    means = sorted(statistics.fmean(rng.choices(values, k=n)) for _ in range(resamples))
    return round(means[int(0.025 * resamples)], 4), round(means[int(0.975 * resamples) - 1], 4)


async def run(split: str, evaldata: Path, limit: int | None = None, top_k: int = 3) -> dict[str, Any]:
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    async with eval_session() as session:
        for lang in ("ru", "en"):
            questions = read_jsonl(evaldata, f"xquad_{lang}", split)
            sampled = sample_questions(questions, limit)
            articles = {q["title"] for q in sampled}  # every paragraph of every article a question comes from
            space = f"xquad-{lang}"
            doc_of: dict[str, str] = {}
            contexts = dict.fromkeys(q["context"] for q in questions if q["title"] in articles)
            for i, context in enumerate(tqdm(contexts, desc=f"ingest {lang}", unit="paragraph", leave=False)):
                doc_of[context] = (await session.ingest(space, f"p{i}.txt", context)).doc_id
            for q in tqdm(sampled, desc=f"/ask xquad_{lang} ({split})", unit="question"):
                t0 = time.perf_counter()
                result = await session.ask(q["question"], space, "auto", top_k)
                answer = result.answer
                verdicts = language_verdicts(answer)
                rows.append(
                    {
                        "language": lang,
                        "id": q["id"],
                        "article": q["title"],
                        "question": q["question"],
                        "gold": [a["text"] for a in q["answers"]],
                        "answer": answer,
                        "answer_language": verdicts["language"],
                        "pipeline_language": verdicts["pipeline_language"],
                        "retrieved_gold": any(s.doc_id == doc_of[q["context"]] for s in result.sources[:top_k]),
                        "wall_s": round(time.perf_counter() - t0, 2),
                        **score_answer(answer, [a["text"] for a in q["answers"]]),
                    }
                )
        profile, models = session.profile, session.models()
    summary = {}
    for lang in ("ru", "en"):
        mine = [r for r in rows if r["language"] == lang]
        if not mine:
            continue
        measures = {
            "language_share": [float(r["answer_language"] == lang) for r in mine],
            "exact_match": [r["exact_match"] for r in mine],
            "f1": [r["f1"] for r in mine],
            "contains": [r["contains"] for r in mine],
            "gold_paragraph_retrieved": [float(r["retrieved_gold"]) for r in mine],
        }
        summary[lang] = {
            "questions": len(mine),
            "articles": len({r["article"] for r in mine}),
            **{k: round(statistics.fmean(v), 4) for k, v in measures.items()},
            "ci95": {k: interval(v) for k, v in measures.items()},
            "detectors_disagree": sum(r["answer_language"] != r["pipeline_language"] for r in mine),
            "wall_s": round(statistics.fmean(r["wall_s"] for r in mine), 2),
        }
    return {
        "split": split,
        "limit": limit,
        "sampling": "seeded, spread round-robin over every article of the split",
        "top_k": top_k,
        "profile": profile,
        "models": models,
        "seconds": round(time.perf_counter() - started, 1),
        "results": summary,
        "answers": rows,
    }


def evaluate(split: str, evaldata: Path, limit: int | None = None) -> dict:
    return asyncio.run(run(split, evaldata, limit))


def to_markdown(report: dict[str, Any]) -> str:
    limit = f", {report['limit']} questions per language spread over all articles" if report.get("limit") else ""
    lines = [
        f"/ask on XQuAD, {report['split']} split{limit} — profile `{report['profile']}` "
        f"({', '.join(f'{k}: {v}' for k, v in report['models'].items())}), top_k {report['top_k']}, "
        f"{report['seconds']} s",
        "",
        "| questions | n (articles) | answer in question's language | exact match | F1 | contains gold | "
        "gold paragraph retrieved | s/question |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict[str, Any], key: str, digits: int = 3) -> str:
        low, high = r["ci95"][key]
        return f"{r[key]:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}]"

    for lang, r in report["results"].items():
        lines.append(
            f"| xquad_{lang} | {r['questions']} ({r['articles']}) | {cell(r, 'language_share', 2)} | "
            f"{cell(r, 'exact_match')} | {cell(r, 'f1')} | {cell(r, 'contains')} | "
            f"{cell(r, 'gold_paragraph_retrieved', 2)} | {r['wall_s']:.1f} |"
        )
    lines.append("")
    lines.append(
        "Brackets: 95% bootstrap confidence intervals. Language judged by Lingua; it disagreed with the "
        "pipeline's own detector on "
        + ", ".join(f"{r['detectors_disagree']} {lang}" for lang, r in report["results"].items())
        + " answers."
    )
    return "\n".join(lines)
