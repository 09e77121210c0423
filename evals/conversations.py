"""Follow-up questions on XQuAD: two-turn dialogues (`evals/dialogues/`), the second question
referring back to the first by a pronoun or an ellipsis, asked through the conversation path
(condensed from the history, then answered).

Measured per language, with 95% bootstrap intervals: the follow-up's gold paragraph among the
sources of its answer (`gold_retrieved`), beside the same follow-up searched alone without the
history (`alone_retrieved`, the baseline that shows what condensing is for) and XQuAD's original,
self-contained question (`original_retrieved`, the ceiling); how often the rewrite was used or fell
back; whether the follow-up's answer text holds a gold span (`answer_contains`: the model is asked
the follow-up itself, not its condensed form) and whether its first quote does (`quote_contains`). Every paragraph
of the articles the dialogues come from is its own document in one space per language.

    docassist eval conversations --split dev --limit 20
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from docassist.evals.answers import contains, interval, sample_questions
from docassist.evals.datasets import read_jsonl
from docassist.evals.session import eval_session

DIALOGUES = Path(__file__).parent / "dialogues"
MEASURES = (
    "gold_retrieved",
    "alone_retrieved",
    "original_retrieved",
    "condensed_by_llm",
    "answer_contains",
    "quote_contains",
    "grounded",
)


def dialogues(split: str, lang: str) -> list[dict[str, Any]]:
    with (DIALOGUES / f"xquad-{split}-{lang}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


async def run(split: str, evaldata: Path, limit: int | None = None, top_k: int = 3) -> dict[str, Any]:
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    async with eval_session() as session:
        assistant = session.assistant
        for lang in ("ru", "en"):
            picked = sample_questions([{**d, "title": d["article"]} for d in dialogues(split, lang)], limit)
            articles = {d["article"] for d in picked}
            space = f"dialogues-{lang}"
            doc_of: dict[str, str] = {}
            paragraphs = dict.fromkeys(
                r["context"] for r in read_jsonl(evaldata, f"xquad_{lang}", split) if r["title"] in articles
            )
            for i, context in enumerate(tqdm(paragraphs, desc=f"ingest {lang}", unit="paragraph", leave=False)):
                doc_of[context] = (await session.ingest(space, f"p{i}.txt", context)).doc_id
            for d in tqdm(picked, desc=f"conversations {lang} ({split})", unit="dialogue"):
                t0 = time.perf_counter()
                gold = doc_of[d["gold_context"]]
                conv = await assistant.conversations.create(space)
                await assistant.turn(space, conv.conversation_id, d["turn1"], "auto", top_k)
                done = await assistant.turn(space, conv.conversation_id, d["turn2"], "auto", top_k)
                alone = await assistant.search(d["turn2"], space, top_k)
                original = await assistant.search(d["turn2_original"], space, top_k)
                quote = done.citations[0].quote if done.citations else ""
                rows.append(
                    {
                        "language": lang,
                        "id": d["id"],
                        "article": d["article"],
                        "turn1": d["turn1"],
                        "turn2": d["turn2"],
                        "standalone_question": done.standalone_question,
                        "condensed": done.condensed,
                        "answer": done.answer,
                        "quote": quote,
                        "gold": d["gold_answers"],
                        "gold_retrieved": float(any(s.doc_id == gold for s in done.sources[:top_k])),
                        "alone_retrieved": float(any(s.doc_id == gold for s in alone.sources[:top_k])),
                        "original_retrieved": float(any(s.doc_id == gold for s in original.sources[:top_k])),
                        "condensed_by_llm": float(done.condensed == "llm"),
                        "answer_contains": contains(done.answer, d["gold_answers"]),
                        "quote_contains": contains(quote, d["gold_answers"]),
                        "grounded": float(done.grounded),
                        "wall_s": round(time.perf_counter() - t0, 2),
                    }
                )
        profile, models = session.profile, session.models()
        answer_ep = assistant.runtime.endpoints[assistant.settings.profile.routing.answer]
        condense = answer_ep.spec.condense
    summary = {}
    for lang in ("ru", "en"):
        mine = [r for r in rows if r["language"] == lang]
        if mine:
            summary[lang] = {
                "dialogues": len(mine),
                "articles": len({r["article"] for r in mine}),
                **{k: round(statistics.fmean(r[k] for r in mine), 4) for k in MEASURES},
                "ci95": {k: interval([r[k] for r in mine]) for k in MEASURES},
                "wall_s": round(statistics.fmean(r["wall_s"] for r in mine), 2),
            }
    return {
        "split": split,
        "limit": limit,
        "top_k": top_k,
        "profile": profile,
        "models": models,
        "condense": condense,
        "seconds": round(time.perf_counter() - started, 1),
        "results": summary,
        "dialogues": rows,
    }


def to_markdown(report: dict[str, Any]) -> str:
    limit = f", {report['limit']} dialogues per language spread over the articles" if report.get("limit") else ""
    lines = [
        f"Follow-ups on XQuAD, {report['split']} split{limit} — profile `{report['profile']}` "
        f"({', '.join(f'{k}: {v}' for k, v in report['models'].items())}), top_k {report['top_k']}, "
        f"condense `{report.get('condense', 'llm')}` (history: the follow-up written after the previous question, no "
        f"LLM call), {report['seconds']} s",
        "",
        "| dialogues | n (articles) | follow-up's gold paragraph retrieved, in the conversation | "
        "the follow-up alone, no history | XQuAD's own question | rewritten by the model (else fallback) | "
        "the follow-up's answer contains gold | first quote contains gold | grounded | s/dialogue |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict[str, Any], key: str) -> str:
        low, high = r["ci95"][key]
        return f"{r[key]:.2f} [{low:.2f}–{high:.2f}]"

    for lang, r in report["results"].items():
        lines.append(
            f"| {lang} | {r['dialogues']} ({r['articles']}) | "
            + " | ".join(cell(r, k) for k in MEASURES)
            + f" | {r['wall_s']:.1f} |"
        )
    lines += ["", "Brackets: 95% bootstrap confidence intervals."]
    return "\n".join(lines)
