"""Pipeline overhead: a summary through the HTTP API vs the very same LLM requests sent
straight to the service's llama.cpp server.

The requests are recorded from the service's own workflow run in this process (same
settings, splitter, prompts and token budgets; see bench/pipeline.py), then each repeat
times `POST /summarize {"force": true}` and a plain replay of the recorded requests, in
alternating order, each after a KV-cache flush. Goal: API / direct ≤ 1.05. Sampling
(temperature 0.2) can make the two sides generate different lengths, so the completion
tokens of both sides are reported beside the ratio.
"""

from __future__ import annotations

from docassist.bench.core import Context, Result, ingest, stored_text, summarize
from docassist.bench.corpus import long_pool, text_of_tokens
from docassist.bench.pipeline import InProcess
from docassist.bench.stats import median, ratio

SPACE = "bench_overhead"


def run(ctx: Context) -> Result:
    res = Result("overhead", "Pipeline overhead")
    inproc = InProcess(ctx.service)
    pool = long_pool()
    try:
        for n, (label, tokens) in enumerate(ctx.sizes.overhead_docs):
            text, counted = text_of_tokens(pool[200_000 * (n + 1) :], tokens, ctx.llama.count)
            doc = ingest(ctx.http, SPACE, f"overhead_{label}.txt", text)
            stored = stored_text(ctx.http, doc)
            ctx.llama.flush()
            inproc_s, result, calls, stats = inproc.summarize(stored, doc["language"])
            ctx.log(f"{label}: {counted} tokens, {len(calls)} calls recorded in-process in {inproc_s:.1f}s")
            api, direct, api_tokens, direct_tokens, api_llm = [], [], [], [], []
            strategy = result["strategy"]
            for r in range(ctx.sizes.overhead_repeats):
                for side in ("api", "direct") if r % 2 == 0 else ("direct", "api"):
                    ctx.llama.flush()
                    if side == "api":
                        seconds, body = summarize(ctx.http, SPACE, doc["doc_id"], force=True)
                        api.append(seconds)
                        api_tokens.append(body["usage"]["completion_tokens"])
                        api_llm.append(body["timing"]["llm_s"])
                        strategy = body["strategy"]
                    else:
                        seconds, texts = ctx.llama.replay(calls)
                        direct.append(seconds)
                        direct_tokens.append(sum(ctx.llama.count(t) for t in texts if t))
                ctx.log(f"{label} repeat {r}: API {api[-1]:.2f}s, direct {direct[-1]:.2f}s")
            pairs = [a / d for a, d in zip(api, direct, strict=True)]
            res.add(
                f"api_over_llama_{label}",
                f"API / direct wall time, {label} path ({counted:,} tokens, {len(calls)} LLM calls)",
                ratio(median(api), median(direct)),
                baseline=f"same {len(calls)} requests straight to llama.cpp: median {median(direct):.2f}s",
                goal=("<=", 1.05),
                context=f"API median {median(api):.2f}s; pairwise ratios {', '.join(f'{p:.3f}' for p in pairs)}; "
                f"completion tokens API {sum(api_tokens) / len(api_tokens):.0f} vs direct "
                f"{sum(direct_tokens) / len(direct_tokens):.0f} (mean)",
            )
            res.data[label] = {
                "tokens": counted,
                "strategy": strategy,
                "llm_calls": len(calls),
                "api_s": [round(x, 3) for x in api],
                "direct_s": [round(x, 3) for x in direct],
                "pair_ratios": [round(p, 4) for p in pairs],
                "api_llm_s": api_llm,
                "api_completion_tokens": api_tokens,
                "direct_completion_tokens": direct_tokens,
                "in_process_s": round(inproc_s, 3),
                "in_process_calls": stats["calls"],
                "max_tokens": [c.max_tokens for c in calls],
            }
    finally:
        inproc.close()
    return res
