"""Growth: summarization time and LLM calls against document length.

Documents of 1k … 100k model tokens are prefixes of the SQuALITY and QMSum dev texts joined
(bench/corpus.py). Each is summarized once through `POST /summarize` after a KV-cache flush.
Map-reduce should grow linearly: the figures are the linear fit's R² and the time per token
of the longest document against the shortest (the baseline in this run).
"""

from __future__ import annotations

from docassist.bench.core import Context, Result, ingest, summarize
from docassist.bench.corpus import long_pool, text_of_tokens
from docassist.bench.stats import linear_fit, ratio

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
    fit = linear_fit([p["tokens"] for p in points], [p["wall_s"] for p in points])
    calls_fit = linear_fit([p["tokens"] for p in points], [p["llm_calls"] for p in points])
    first, last = points[0], points[-1]
    per_token = ratio(last["wall_s"] / last["tokens"], first["wall_s"] / first["tokens"])
    res.add(
        "wall_linear_r2",
        "wall time vs length: linear fit R²",
        round(fit["r2"], 4),
        "R²",
        goal=(">=", 0.95),
        context=f"slope {fit['slope'] * 1000:.2f} s per 1k tokens, intercept {fit['intercept']:.1f}s",
    )
    res.add(
        "time_per_token_longest_over_shortest",
        f"time per token, {last['tokens']:,} vs {first['tokens']:,} tokens",
        per_token,
        baseline=f"{first['tokens']:,} tokens: {first['wall_s'] / first['tokens'] * 1000:.2f} ms/token",
        context=f"{last['tokens']:,} tokens: {last['wall_s'] / last['tokens'] * 1000:.2f} ms/token",
    )
    res.add(
        "calls_linear_r2",
        "LLM calls vs length: linear fit R²",
        round(calls_fit["r2"], 4),
        "R²",
        context=", ".join(f"{p['tokens']:,}→{p['llm_calls']}" for p in points),
    )
    res.data = {"points": points, "fit_wall_s": fit, "fit_llm_calls": calls_fit}
    return res
