"""`/ask` on XQuAD: answer exact match / F1 against the gold spans, and the answer's language.

Questions are sampled across every article of the split (seeded); all paragraphs of the
articles they come from are ingested into a space per language (with every article when all
questions are asked), and each question goes through the served ask pipeline. SQuAD-style
scoring: lower-case, drop punctuation (and English articles), then exact match and token F1
against the best gold answer; `contains` counts answers in which a gold span occurs — the fair
measure for a generative model that answers in a sentence. Each answer's first citation is
scored too (`quote_contains`: the quoted sentence holds a gold span), and whether the answer was
`grounded`. The decline: the questions whose article is left out of a second space (holding every
other article of the sample's first half) are asked there, and should be declined.

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

from docassist.evals.answer_styles import THRESHOLDS, ask_both, ratio
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
        "contains": contains(answer, golds),
    }


def contains(text: str, golds: list[str]) -> float:
    norm = normalize(text)
    return float(any(normalize(g) and f" {normalize(g)} " in f" {norm} " for g in golds))


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
    declines: list[dict[str, Any]] = []
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
            for turn, q in enumerate(tqdm(sampled, desc=f"/ask xquad_{lang} ({split})", unit="question")):
                both = await ask_both(session, q["question"], space, top_k, turn)
                result = both["configured"]
                answer, golds = result.answer, [a["text"] for a in q["answers"]]
                quote = result.citations[0].quote if result.citations else ""
                verdicts = language_verdicts(answer)
                scores = score_answer(answer, golds)
                rows.append(
                    {
                        "language": lang,
                        "id": q["id"],
                        "article": q["title"],
                        "question": q["question"],
                        "gold": golds,
                        "answer": answer,
                        "quote": quote,
                        "grounded": result.grounded,
                        "answer_language": verdicts["language"],
                        "pipeline_language": verdicts["pipeline_language"],
                        "retrieved_gold": any(s.doc_id == doc_of[q["context"]] for s in result.sources[:top_k]),
                        "wall_s": both["configured_timing"]["wall_s"],
                        "first_s": both["configured_timing"]["first_s"],
                        **scores,
                        "quote_contains": contains(quote, golds),
                        "answer_or_quote_contains": max(scores["contains"], contains(quote, golds)),
                        "support": [s.model_dump() for s in result.support],
                        "before": {**both["before"], "contains": contains(both["before"]["answer"], golds)},
                        "checks": [{**c, "holds_gold": contains(c["text"], golds)} for c in both["checks"]],
                        "by_threshold": {t: contains(a, golds) for t, a in both["by_threshold"].items()},
                    }
                )
            kept = set(sorted(articles)[::2])  # the second space holds these articles only
            absent = [q for q in sampled if q["title"] not in kept]
            half = f"xquad-{lang}-half"
            title_of = {q["context"]: q["title"] for q in questions}
            for i, context in enumerate(c for c in contexts if title_of[c] in kept):
                await session.ingest(half, f"p{i}.txt", context)
            for q in tqdm(absent, desc=f"/ask xquad_{lang}, article left out", unit="question"):
                result = await session.ask(q["question"], half, "auto", top_k)
                declines.append(
                    {"language": lang, "id": q["id"], "declined": not result.grounded, "answer": result.answer}
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
            "quote_contains": [r["quote_contains"] for r in mine],
            "answer_or_quote_contains": [r["answer_or_quote_contains"] for r in mine],
            "grounded": [float(r["grounded"]) for r in mine],
            "gold_paragraph_retrieved": [float(r["retrieved_gold"]) for r in mine],
        }
        if declined := [float(d["declined"]) for d in declines if d["language"] == lang]:
            measures["declined_when_absent"] = declined
        summary[lang] = {
            "questions": len(mine),
            "articles": len({r["article"] for r in mine}),
            **{k: round(statistics.fmean(v), 4) for k, v in measures.items()},
            "ci95": {k: interval(v) for k, v in measures.items()},
            "detectors_disagree": sum(r["answer_language"] != r["pipeline_language"] for r in mine),
            "wall_s": round(statistics.fmean(r["wall_s"] for r in mine), 2),
            **styles_summary(mine),
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
        "declines": declines,
    }


def styles_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer as before (unchecked) against the configured one, and the thresholds' curve:
    what the answers would hold, and the share of the sentences holding the gold answer each keeps."""
    gold_sentences = [c for r in rows for c in r["checks"] if c["holds_gold"]]
    curve = {}
    for t in map(str, THRESHOLDS):
        with_t = [r["by_threshold"][t] for r in rows if r["by_threshold"]]
        kept = [float(not c["missing"] and c["score"] >= float(t)) for c in gold_sentences]
        curve[t] = {
            "contains": round(statistics.fmean(with_t), 4) if with_t else None,
            "gold_sentences_kept": round(statistics.fmean(kept), 4) if kept else None,
        }
    timing = [{"before": r["before"], "configured": r} for r in rows]
    return {
        "before_contains": round(statistics.fmean(r["before"]["contains"] for r in rows), 4),
        "wall_ratio": ratio(timing, "wall_s"),
        "first_text_ratio": ratio(timing, "first_s"),
        "before_wall_s": round(statistics.fmean(r["before"]["wall_s"] for r in rows), 2),
        "thresholds": curve,
    }


def styles_markdown(results: dict[str, Any]) -> list[str]:
    lines = [
        "The same questions asked as before answers were checked (the model's words, unchecked), in turns with the "
        "configured answer:",
        "",
        "| questions | contains gold: before | contains gold: configured | wall time, configured ÷ before | "
        "first answer text, configured ÷ before | s/question before |",
        "|---|---|---|---|---|---|",
    ]
    for lang, r in results.items():
        lines.append(
            f"| xquad_{lang} | {r['before_contains']:.3f} | {r['contains']:.3f} | {r['wall_ratio']:.2f} | "
            f"{r['first_text_ratio']:.2f} | {r['before_wall_s']:.1f} |"
        )
    lines += [
        "",
        "The unchecked answers checked after the fact: at each threshold, what the answer would hold (the sentences "
        "kept, else the quote) and the share of the answers' sentences holding the gold answer that it keeps:",
        "",
        "| threshold | " + " | ".join(f"{g}: contains gold | {g}: gold sentences kept" for g in results) + " |",
        "|---|" + "---|---|" * len(results),
    ]
    for t in next(iter(results.values()))["thresholds"]:
        cells = []
        for r in results.values():
            point = r["thresholds"][t]
            cells += [
                f"{point['contains']:.3f}" if point["contains"] is not None else "–",
                f"{point['gold_sentences_kept']:.2f}" if point["gold_sentences_kept"] is not None else "–",
            ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


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
        "first quote contains gold | answer or quote contains gold | grounded | declined, article left out | "
        "gold paragraph retrieved | s/question |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict[str, Any], key: str, digits: int = 3) -> str:
        if key not in r:
            return "–"
        low, high = r["ci95"][key]
        return f"{r[key]:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}]"

    for lang, r in report["results"].items():
        lines.append(
            f"| xquad_{lang} | {r['questions']} ({r['articles']}) | {cell(r, 'language_share', 2)} | "
            f"{cell(r, 'exact_match')} | {cell(r, 'f1')} | {cell(r, 'contains')} | {cell(r, 'quote_contains')} | "
            f"{cell(r, 'answer_or_quote_contains')} | {cell(r, 'grounded', 2)} | "
            f"{cell(r, 'declined_when_absent', 2)} | "
            f"{cell(r, 'gold_paragraph_retrieved', 2)} | {r['wall_s']:.1f} |"
        )
    lines += ["", *styles_markdown(report["results"])]
    lines.append("")
    lines.append(
        "Brackets: 95% bootstrap confidence intervals. Language judged by Lingua; it disagreed with the "
        "pipeline's own detector on "
        + ", ".join(f"{r['detectors_disagree']} {lang}" for lang, r in report["results"].items())
        + " answers."
    )
    return "\n".join(lines)
