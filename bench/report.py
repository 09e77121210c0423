"""The run's outputs: `<date>.json` (everything), `<date>.md` (one table, then the tables a benchmark adds),
`<date>-growth.png`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from docassist.bench.core import Result


def _fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "—"
    if unit == "×":
        return f"{value:.3f}×"
    if unit in ("R²",):
        return f"{value:.3f}"
    return f"{value:,.2f} {unit}" if abs(value) < 100 else f"{value:,.0f} {unit}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(meta: dict[str, Any], results: list[Result]) -> str:
    lines = [
        f"# docassist benchmarks — {meta['date']}",
        "",
        f"Mode: **{meta['mode']}** · commit `{meta['commit']}` · {meta['machine']}",
        "",
        "Every figure is a ratio or distribution against a baseline measured in the same run; absolute "
        "times are context. Goals: ✅ met, ❌ missed.",
        "",
        "| benchmark | figure | value | baseline | goal | context |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        if res.error:
            lines.append(f"| {res.title} | failed | — | — | — | {_cell(res.error)} |")
            continue
        for f in res.figures:
            goal = f"{f.goal} {'✅' if f.ok else '❌' if f.ok is not None else ''}".strip() if f.goal else ""
            lines.append(
                f"| {res.title} | {_cell(f.label)} | {_fmt(f.value, f.unit)} | {_cell(f.baseline)} | "
                f"{goal} | {_cell(f.context)} |"
            )
    notes = [(res.title, n) for res in results for n in res.notes]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- **{title}**: {note}" for title, note in notes]
    for res in results:
        for table in res.tables:
            lines += ["", f"## {res.title}: {table.title}", "", "| " + " | ".join(map(_cell, table.header)) + " |"]
            lines.append("|" + "---|" * len(table.header))
            lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in table.rows]
    lines += ["", "Durations: " + ", ".join(f"{r.name} {r.seconds:.0f}s" for r in results) + "."]
    return "\n".join(lines) + "\n"


def growth_plot(result: Result, path: Path) -> bool:
    """Wall time and LLM calls against document length, with the three fits. False if no data."""
    points = result.data.get("points") or []
    if len(points) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from docassist.bench.stats import GROWTH_MODELS

    xs = [p["tokens"] for p in points]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(xs, [p["wall_s"] for p in points], "o", label="POST /summarize wall time")
    for name, fit in result.data["fits_wall_s"].items():
        f = GROWTH_MODELS[name]
        ax1.plot(xs, [fit["slope"] * f(x) + fit["intercept"] for x in xs], "--", label=f"{name}, R² = {fit['r2']:.4f}")
    ax1.set_xlabel("document length (model tokens)")
    ax1.set_ylabel("seconds")
    ax1.set_title("Summarization time vs length")
    ax1.legend()
    ax2.plot(xs, [p["llm_calls"] for p in points], "s-", color="tab:orange")
    ax2.set_xlabel("document length (model tokens)")
    ax2.set_ylabel("LLM calls")
    ax2.set_ylim(bottom=0)
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_title("LLM calls vs length")
    for ax in (ax1, ax2):  # linear axes: a straight line is what "grows linearly" looks like
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(out_dir: Path, meta: dict[str, Any], results: list[Result]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = meta["date"]
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md"}
    payload = {**meta, "benchmarks": {r.name: r.to_json() for r in results}}
    paths["json"].write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(meta, results), encoding="utf-8")
    growth = next((r for r in results if r.name == "growth" and not r.error), None)
    if growth is not None and growth_plot(growth, out_dir / f"{stem}-growth.png"):
        paths["png"] = out_dir / f"{stem}-growth.png"
    return paths
