"""`/ask` on XQuAD: answer exact match / F1 against the gold spans, and the answer's language.

Each language's paragraphs of the split are ingested into a space of their own; each
question goes through the served ask pipeline (retrieve → route → answer). SQuAD-style
scoring: lower-case, drop punctuation (and English articles), then exact match and token F1
against the best gold answer; `contains` counts answers in which a gold span occurs — the fair
measure for a generative model that answers in a sentence.

    docassist eval answers --split dev --limit 20
"""

from __future__ import annotations

import asyncio
import re
import statistics
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from docassist.evals.datasets import read_jsonl
from docassist.evals.session import eval_session
from docassist.pipelines.documents.language import detect_language

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


async def run(split: str, evaldata: Path, limit: int | None = None, top_k: int = 3) -> dict[str, Any]:
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    async with eval_session() as session:
        for lang in ("ru", "en"):
            questions = read_jsonl(evaldata, f"xquad_{lang}", split)
            space = f"xquad-{lang}"
            doc_of: dict[str, str] = {}
            for i, context in enumerate(
                tqdm(
                    dict.fromkeys(q["context"] for q in questions), desc=f"ingest {lang}", unit="paragraph", leave=False
                )
            ):
                doc_of[context] = (await session.ingest(space, f"p{i}.txt", context)).doc_id
            for q in tqdm(questions[:limit], desc=f"/ask xquad_{lang} ({split})", unit="question"):
                t0 = time.perf_counter()
                result = await session.ask(q["question"], space, "auto", top_k)
                answer = result.answer
                rows.append(
                    {
                        "language": lang,
                        "id": q["id"],
                        "question": q["question"],
                        "gold": [a["text"] for a in q["answers"]],
                        "answer": answer,
                        "answer_language": detect_language(answer).code if answer.strip() else None,
                        "retrieved_gold": any(s.doc_id == doc_of[q["context"]] for s in result.sources[:top_k]),
                        "wall_s": round(time.perf_counter() - t0, 2),
                        **score_answer(answer, [a["text"] for a in q["answers"]]),
                    }
                )
        profile, models = session.profile, session.models()
    summary = {}
    for lang in ("ru", "en"):
        mine = [r for r in rows if r["language"] == lang]
        if mine:
            summary[lang] = {
                "questions": len(mine),
                "language_share": round(sum(r["answer_language"] == lang for r in mine) / len(mine), 4),
                **{
                    k: round(statistics.fmean(r[k] for r in mine), 4)
                    for k in ("exact_match", "f1", "contains", "wall_s")
                },
                "gold_paragraph_retrieved": round(sum(r["retrieved_gold"] for r in mine) / len(mine), 4),
            }
    return {
        "split": split,
        "limit": limit,
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
    limit = f", first {report['limit']} questions per language" if report.get("limit") else ""
    lines = [
        f"/ask on XQuAD, {report['split']} split{limit} — profile `{report['profile']}` "
        f"({', '.join(f'{k}: {v}' for k, v in report['models'].items())}), top_k {report['top_k']}, "
        f"{report['seconds']} s",
        "",
        "| questions | n | answer in question's language | exact match | F1 | contains gold | "
        "gold paragraph retrieved | s/question |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lang, r in report["results"].items():
        lines.append(
            f"| xquad_{lang} | {r['questions']} | {r['language_share']:.2f} | {r['exact_match']:.3f} | {r['f1']:.3f} | "
            f"{r['contains']:.3f} | {r['gold_paragraph_retrieved']:.2f} | {r['wall_s']:.1f} |"
        )
    return "\n".join(lines)
