"""Growth: summarization time and LLM calls against document length.

Documents of evenly spread lengths (2k … 62k model tokens in a full run: no single point
dominates the fit) are prefixes of the SQuALITY and QMSum dev texts joined (bench/corpus.py).
Each is summarized once through `POST /summarize` after a KV-cache flush. Reported: the time per
1k tokens at each length and the largest over the smallest, and three fits on the same points —
linear, n log n and n^1.3 — with the one that fits best named. R² alone cannot tell these apart
on a few log-spaced points; the residuals on evenly spread points can.
"""

from __future__ import annotations

from docassist.bench.core import Context, Result, ingest, summarize
from docassist.bench.corpus import long_pool, text_of_tokens
from docassist.bench.stats import growth_fits, linear_fit, ratio

SPACE = "bench_growth"


def run(ctx: Context) -> Result:
    res = Result("growth", "Growth with document length")
    pool = long_pool()
    points = []
    for target in ctx.sizes.growth_tokens:
        text, tokens = text_of_tokens(pool, target, ctx.llama.count)
        doc = ingest(ctx.http, SPACE, f"growth_{target}.txt", text)
        ctx.llama.flush()
        seconds, body = summarize(ctx.http, SPACE, doc["doc_id"], force=True)
        point = {
            "target": target,
            "tokens": tokens,
            "chars": len(text),
            "wall_s": round(seconds, 3),
            "ms_per_1k_tokens": round(seconds / tokens * 1e6, 1),
            "llm_calls": body["usage"]["llm_calls"],
            "prompt_tokens": body["usage"]["prompt_tokens"],
            "completion_tokens": body["usage"]["completion_tokens"],
            "strategy": body["strategy"],
            "levels": body["timing"].get("levels", 0),
            "llm_s": body["timing"].get("llm_s"),
            "doc_id": doc["doc_id"],
        }
        points.append(point)
        ctx.log(f"{tokens:,} tokens: {seconds:.1f}s, {point['llm_calls']} calls ({point['strategy']})")
    ctx.memo["largest_summarized"] = {"space_id": SPACE, **points[-1]}
    ns, ys = [p["tokens"] for p in points], [p["wall_s"] for p in points]
    fits = growth_fits(ns, ys)
    best = min(fits, key=lambda name: fits[name]["rss"])
    first, last = points[0], points[-1]
    res.add(
        "seconds_per_1k_tokens_largest_over_smallest",
        f"seconds per 1k tokens, {last['tokens']:,} vs {first['tokens']:,} tokens",
        ratio(last["ms_per_1k_tokens"], first["ms_per_1k_tokens"]),
        baseline=f"{first['tokens']:,} tokens: {first['ms_per_1k_tokens'] / 1000:.2f} s per 1k tokens",
        context="per size: " + ", ".join(f"{p['tokens']:,}→{p['ms_per_1k_tokens'] / 1000:.2f}s" for p in points),
    )
    res.add(
        "best_fit",
        f"best of linear, n log n, n^1.3 on {len(points)} evenly spread sizes: {best}",
        round(fits[best]["r2"], 4),
        "R²",
        context="; ".join(f"{name}: R² {f['r2']:.4f}, residual {f['rss']:.1f} s²" for name, f in fits.items()),
    )
    calls_fit = linear_fit(ns, [p["llm_calls"] for p in points])
    res.add(
        "calls_linear_r2",
        "LLM calls vs length: linear fit R²",
        round(calls_fit["r2"], 4),
        "R²",
        context=", ".join(f"{p['tokens']:,}→{p['llm_calls']}" for p in points),
    )
    res.data = {"points": points, "fits_wall_s": fits, "best_fit": best, "fit_llm_calls": calls_fit}
    return res
