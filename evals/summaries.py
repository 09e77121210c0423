"""Summaries on the evaluation sets: language, quality against references, faithfulness, cost.

Every document goes through the served summarize pipeline (direct or tree, whichever the
profile's context window calls for). Per document: the summary's language against the
expected one, ROUGE-1/2/L (Russian-aware stemming) and e5 similarity against all references,
sentence-level faithfulness to the document, the most copies of one sentence (3 or more: the
summary loops), and the run's LLM calls, tokens and wall time.
On SummEval the 16 reference systems are scored with the same metrics on the same articles,
so our numbers sit next to theirs.

    docassist eval summaries --split dev --limit 3
    docassist eval summaries --split test --sets summeval_cnndm_en,ria_headlines_ru \
        --out evals/results/summaries-test.json
    docassist eval summaries --split dev --sets qmsum_long_en,squality_long_en \
        --ids qmsum-ES2004b,qmsum-ES2011a    # only these documents (minutes each)
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from docassist.evals.datasets import LONG_SETS, SUMMARY_SETS, EvalDoc, read_jsonl, summary_docs
from docassist.evals.language import language_verdicts
from docassist.evals.metrics import ROUGE_TYPES, embedding_similarity, faithfulness, rouge, score_systems
from docassist.evals.session import EvalSession, eval_session
from docassist.evals.summary_support import agreement, labels, support_of
from docassist.pipelines.llm.repetition import TIMES, most_copies

SCORES = (*ROUGE_TYPES, "e5_similarity", "faithfulness")


def score_summary(summary: str, doc: EvalDoc, embed: Any) -> dict[str, Any]:
    """The metrics of one summary; reference metrics are None where the set has no reference. Its
    language is judged by Lingua, independently of the detector the pipeline retries against."""
    verdicts = language_verdicts(summary)
    out: dict[str, Any] = {"summary_language": verdicts["language"], "pipeline_language": verdicts["pipeline_language"]}
    out["language_ok"] = out["summary_language"] == doc.language
    out["detectors_disagree"] = verdicts["language"] != verdicts["pipeline_language"]
    if doc.references:
        out.update(rouge(summary, doc.references))
        out["e5_similarity"] = embedding_similarity(summary, doc.references, embed) if summary.strip() else 0.0
    else:
        out.update(dict.fromkeys((*ROUGE_TYPES, "e5_similarity")))
    check = faithfulness(summary, doc.text, embed, language=doc.language)
    out["faithfulness"], out["unsupported"] = check.score, check.unsupported
    out["repeats"] = most_copies(summary)  # 3 or more: the summary loops
    return out


async def summarize_doc(session: EvalSession, doc: EvalDoc, embed: Any) -> dict[str, Any]:
    record = await session.ingest(f"eval-{doc.set}", f"{doc.id}.txt", doc.text)
    started = time.perf_counter()
    try:
        result = await session.summarize(record)
    except Exception as exc:  # a failed document is a result too: counted, not fatal
        return {"set": doc.set, "id": doc.id, "language": doc.language, "chars": len(doc.text), "error": str(exc)}
    usage, timing = result.usage, result.timing
    summary = result.summary
    return {
        "set": doc.set,
        "id": doc.id,
        "language": doc.language,
        "chars": len(doc.text),
        "tokens": record.tokens,
        "strategy": result.strategy,
        "llm_calls": usage.llm_calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "levels": timing.get("levels"),
        "wall_s": round(time.perf_counter() - started, 2),
        "summary": summary,
        "support": await asyncio.to_thread(support_of, result.sentences, embed),
        **await asyncio.to_thread(score_summary, summary, doc, embed),
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 4) if present else None


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    agg: dict[str, Any] = {
        "documents": len(rows),
        "failed": len(rows) - len(ok),
        "language_share": round(sum(r["language_ok"] for r in ok) / len(rows), 4) if rows else None,
        "detectors_disagree": sum(r.get("detectors_disagree", False) for r in ok),
        "looping": sum(r.get("repeats", 0) >= TIMES for r in ok),
        "sentences": sum(r["support"]["sentences"] for r in ok if "support" in r),
        "sentences_cited": sum(r["support"]["cited"] for r in ok if "support" in r),
        "sentences_supported": sum(r["support"]["supported"] for r in ok if "support" in r),
    }
    for key in (*SCORES, "llm_calls", "prompt_tokens", "completion_tokens", "wall_s"):
        agg[key] = _mean([r.get(key) for r in ok])
    agg["strategies"] = {s: sum(r.get("strategy") == s for r in ok) for s in ("direct", "tree")}
    return agg


def reference_systems(evaldata: Path, split: str, limit: int | None, embed: Any) -> dict[str, dict[str, float]]:
    """SummEval's 16 systems scored with our metrics on the same articles, plus the experts' means."""
    rows = read_jsonl(evaldata, "summeval_cnndm_en", split)[:limit]
    scores: dict[str, dict[str, list[float]]] = {}
    for row in tqdm(rows, desc="SummEval reference systems", unit="article", leave=False):
        for system, metrics in score_systems(row, embed).items():
            s = scores.setdefault(system, {k: [] for k in (*SCORES, "expert_relevance", "expert_consistency")})
            for k in SCORES:
                s[k].append(metrics[k])
            experts = row["system_summaries"][system]["expert_scores"]
            s["expert_relevance"].append(experts["relevance"])
            s["expert_consistency"].append(experts["consistency"])
    return {name: {k: round(statistics.fmean(v), 4) for k, v in s.items()} for name, s in sorted(scores.items())}


async def run(
    split: str,
    evaldata: Path,
    limit: int | None = None,
    sets: tuple[str, ...] = SUMMARY_SETS,
    long_limit: int | None = None,
    ids: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`limit` documents per set; `long_limit` (default `limit`) for the long sets, which cost minutes each;
    `ids`: only these documents."""
    long_limit = long_limit if long_limit is not None else limit
    docs = [
        d for name in sets for d in summary_docs(evaldata, split, name)[: long_limit if name in LONG_SETS else limit]
    ]
    docs = [d for d in docs if d.id in ids] if ids else docs
    started = time.perf_counter()
    async with eval_session() as session:
        embed = session.embed_model
        rows = []
        for doc in tqdm(docs, desc=f"summaries ({split})", unit="doc"):
            rows.append(await summarize_doc(session, doc, embed))
        report: dict[str, Any] = {
            "split": split,
            "limit": limit,
            "long_limit": long_limit,
            "ids": list(ids),
            "profile": session.profile,
            "models": session.models(),
            "context_window": session.context_window,
        }
        if "summeval_cnndm_en" in sets:
            report["summeval_systems"] = await asyncio.to_thread(reference_systems, evaldata, split, limit, embed)
        report["hand_labels"] = {
            lang: await asyncio.to_thread(agreement, lang, embed) for lang in ("ru", "en") if labels(lang)
        }
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["sets"] = {name: aggregate([r for r in rows if r["set"] == name]) for name in sets}
    langs = sorted({r["language"] for r in rows})
    report["language_share"] = {
        lang: round(
            sum(r.get("language_ok", False) for r in rows if r["language"] == lang)
            / sum(r["language"] == lang for r in rows),
            4,
        )
        for lang in langs
    }
    report["documents"] = rows
    return report


def evaluate(
    split: str,
    evaldata: Path,
    limit: int | None = None,
    sets: tuple[str, ...] = SUMMARY_SETS,
    long_limit: int | None = None,
    ids: tuple[str, ...] = (),
) -> dict:
    return asyncio.run(run(split, evaldata, limit, sets, long_limit, ids))


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def support_markdown(report: dict[str, Any]) -> list[str]:
    """Summary sentences tied to a passage, and borne out by it (the proxy, with its agreement
    with the hand labels)."""
    sets = {n: a for n, a in report["sets"].items() if a.get("sentences")}
    if not sets:
        return []
    lines = [
        "",
        "Each summary sentence and the passage it cites (`sentences`): the share with a passage, and of those the "
        "share the passage bears out by the proxy (e5 cosine ≥ 0.86 and ≥ 0.6 of its stems in the quote):",
        "",
        "| set | sentences | with a passage | borne out by it |",
        "|---|---|---|---|",
    ]
    for name, a in sets.items():
        cited = a["sentences_cited"]
        lines.append(
            f"| {name} | {a['sentences']} | {cited / a['sentences']:.2f} | "
            f"{(a['sentences_supported'] / cited) if cited else 0:.2f} |"
        )
    for lang in ("ru", "en"):
        if (check := report.get("hand_labels", {}).get(lang) or agreement(lang)) is not None:
            lines.append(
                f"\nThe proxy against {check['labelled']} {lang} sentences labelled by hand: agreement "
                f"{check['agreement']:.2f}; borne out by hand {check['supported_by_hand']:.2f}, by the proxy "
                f"{check['supported_by_proxy']:.2f}."
            )
            if check.get("cited_by_rule"):
                lines.append(
                    f"The citation rule (`summary_sources.bears_out`) still cites {check['cited_by_rule']} of them; "
                    f"of those, borne out by hand: {check['cited_supported_by_hand']:.2f}."
                )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    limits = [f"first {report['limit']} per set"] if report.get("limit") else []
    if report.get("long_limit") is not None and report.get("long_limit") != report.get("limit"):
        limits.append(f"first {report['long_limit']} per long set")
    if report.get("ids"):
        limits.append(f"documents {', '.join(report['ids'])}")
    limit = f", {', '.join(limits)}" if limits else ""
    lines = [
        f"Summaries, {report['split']} split{limit} — profile `{report['profile']}` "
        f"({', '.join(f'{k}: {v}' for k, v in report['models'].items())}), context window "
        f"{report['context_window']}, {report['seconds']} s",
        "",
        "| set | docs | in expected language | ROUGE-1 | ROUGE-2 | ROUGE-L | e5 sim. | faithful | "
        "LLM calls | prompt tok. | s/doc | looping |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, a in report["sets"].items():
        failed = f" ({a['failed']} failed)" if a["failed"] else ""
        lines.append(
            f"| {name} | {a['documents']}{failed} | "
            f"{_f(a['language_share'], 2)} | {_f(a['rouge1'])} | {_f(a['rouge2'])} | {_f(a['rougeL'])} | "
            f"{_f(a['e5_similarity'])} | {_f(a['faithfulness'], 2)} | {_f(a['llm_calls'], 1)} | "
            f"{_f(a['prompt_tokens'], 0)} | {_f(a['wall_s'], 1)} | {a.get('looping', '–')} |"
        )
    lines += [
        "",
        "Share of summaries in the expected language: "
        + ", ".join(f"{k} {v:.2f}" for k, v in report["language_share"].items()),
    ]
    lines += support_markdown(report)
    long_rows = [r for r in report["documents"] if r["set"] in LONG_SETS and "error" not in r]
    if long_rows:
        lines += [
            "",
            "Long documents (tree when the document does not fit one call, direct otherwise):",
            "",
            "| document | chars | doc tokens | strategy | levels | LLM calls | prompt + completion tok. | wall s | "
            "ROUGE-L | faithful | most copies of a sentence |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['id']} | {r['chars']:,} | {r['tokens']:,} | {r['strategy']} | {r['levels']} | {r['llm_calls']} | "
            f"{r['prompt_tokens']:,} + {r['completion_tokens']:,} | {r['wall_s']} | {_f(r['rougeL'])} | "
            f"{_f(r['faithfulness'], 2)} | {r.get('repeats', '–')} |"
            for r in long_rows
        ]
    systems = report.get("summeval_systems")
    if systems:
        ours = report["sets"]["summeval_cnndm_en"]
        lines += [
            "",
            "SummEval: ours next to the 16 reference systems, same metrics, same articles "
            "(expert relevance/consistency on 1–5 for context):",
            "",
            "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | e5 sim. | faithful | expert rel. | expert cons. |",
            "|---|---|---|---|---|---|---|---|",
            f"| **docassist ({report['profile']})** | {_f(ours['rouge1'])} | {_f(ours['rouge2'])} | "
            f"{_f(ours['rougeL'])} | {_f(ours['e5_similarity'])} | {_f(ours['faithfulness'], 2)} | – | – |",
        ]
        for name, s in sorted(systems.items(), key=lambda kv: -kv[1]["rougeL"]):
            lines.append(
                f"| {name} | {_f(s['rouge1'])} | {_f(s['rouge2'])} | {_f(s['rougeL'])} | {_f(s['e5_similarity'])} | "
                f"{_f(s['faithfulness'], 2)} | {_f(s['expert_relevance'], 2)} | {_f(s['expert_consistency'], 2)} |"
            )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path | None:
    """SummEval: ours among the reference systems; long documents: wall time and calls vs tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = report.get("summeval_systems") or {}
    long_rows = [r for r in report["documents"] if r["set"] in LONG_SETS and "error" not in r]
    panels = [p for p in ("summeval", "long") if (p == "summeval" and systems) or (p == "long" and long_rows)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "summeval":
            ours = report["sets"]["summeval_cnndm_en"]
            names = sorted(systems, key=lambda n: systems[n]["rougeL"])
            ax.scatter(
                [systems[n]["rougeL"] for n in names],
                [systems[n]["faithfulness"] for n in names],
                label="SummEval systems",
                color="grey",
            )
            for n in names:
                ax.annotate(n, (systems[n]["rougeL"], systems[n]["faithfulness"]), fontsize=7)
            ax.scatter([ours["rougeL"] or 0], [ours["faithfulness"] or 0], color="red", label="docassist")
            ax.set_xlabel("ROUGE-L vs 11 references")
            ax.set_ylabel("faithfulness (share of supported sentences)")
            ax.set_title(f"SummEval {report['split']}")
            ax.legend(fontsize=8)
        else:
            for strategy, color in (("direct", "tab:blue"), ("tree", "tab:red")):
                mine = [r for r in long_rows if r["strategy"] == strategy]
                ax.scatter(
                    [r["tokens"] for r in mine], [r["wall_s"] for r in mine], color=color, label=f"{strategy} (wall s)"
                )
                for r in mine:
                    ax.annotate(f"{r['llm_calls']} calls", (r["tokens"], r["wall_s"]), fontsize=7)
            ax.set_xlabel("document tokens")
            ax.set_ylabel("wall time, s")
            ax.set_title(f"Long documents, context window {report['context_window']}")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
