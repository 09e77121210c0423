"""Pipeline overhead: a summary through the HTTP API vs the very same LLM requests sent straight to
the service's llama.cpp server.

For each document (one that fits a call, one that takes the tree path) an untimed
`POST /summarize` records the exact requests the service sends (its capture file: bodies as
sent — prompts, `max_tokens`, stop sequences, temperature, streaming). Then, in alternating
order, each of at least five repeats times `POST /summarize {"force": true}` and a plain replay
of those requests, each after a KV-cache flush. The benchmark service runs greedy
(temperature 0), so both sides generate the same tokens: their completion lengths are reported,
and time per prompt token and per generated token beside the wall-time ratio. Goal: median
API / direct ≤ 1.05.
"""

from __future__ import annotations

from docassist.bench.core import Context, Result, ingest, summarize
from docassist.bench.corpus import long_pool, text_of_tokens
from docassist.bench.stats import median, spread

SPACE = "bench_overhead"


def run(ctx: Context) -> Result:
    res = Result("overhead", "Pipeline overhead")
    pool = long_pool()
    docs = ctx.sizes.overhead_docs
    for n, (label, tokens) in enumerate(docs):
        # 200k characters further into the pool per document; spread evenly over a pool too short for
        # that (the tests' sample of the evaluation data)
        start = min(200_000 * (n + 1), len(pool) * (n + 1) // (len(docs) + 1))
        text, counted = text_of_tokens(pool[start:], tokens, ctx.llama.count)
        doc = ingest(ctx.http, SPACE, f"overhead_{label}.txt", text)
        ctx.llama.flush()
        mark = ctx.capture.mark()
        _, first = summarize(ctx.http, SPACE, doc["doc_id"], force=True)
        requests = ctx.capture.since(mark)
        ctx.log(f"{label}: {counted} tokens, {len(requests)} requests captured ({first['strategy']})")
        api, direct, api_tokens, direct_tokens = [], [], [], []
        for r in range(ctx.sizes.overhead_repeats):
            for side in ("api", "direct") if r % 2 == 0 else ("direct", "api"):
                ctx.llama.flush()
                if side == "api":
                    seconds, body = summarize(ctx.http, SPACE, doc["doc_id"], force=True)
                    api.append(seconds)
                    api_tokens.append(body["usage"]["completion_tokens"])
                else:
                    seconds, texts = ctx.llama.replay(requests)
                    direct.append(seconds)
                    direct_tokens.append(sum(ctx.llama.count(t) - 1 for t in texts if t))
            ctx.log(f"{label} repeat {r}: API {api[-1]:.2f}s, direct {direct[-1]:.2f}s")
        pairs = [a / d for a, d in zip(api, direct, strict=True)]
        prompt_tokens = first["usage"]["prompt_tokens"]
        generated = median(api_tokens)
        res.add(
            f"api_over_llama_{label}",
            f"API / direct wall time, {label} path ({counted:,} tokens, {len(requests)} LLM calls), median of "
            f"{len(pairs)}",
            round(median(pairs), 3),
            baseline=f"the same {len(requests)} requests straight to llama.cpp: median {median(direct):.2f}s",
            goal=("<=", 1.05),
            context=f"pairwise ratios {spread(pairs)}; API median {median(api):.2f}s; generated tokens API "
            f"{sorted(set(api_tokens))} vs direct {sorted(set(direct_tokens))}; per prompt token API "
            f"{median(api) / prompt_tokens * 1000:.2f} ms vs direct {median(direct) / prompt_tokens * 1000:.2f} ms; "
            f"per generated token API {median(api) / max(generated, 1) * 1000:.1f} ms vs direct "
            f"{median(direct) / max(median(direct_tokens), 1) * 1000:.1f} ms",
        )
        res.data[label] = {
            "tokens": counted,
            "strategy": first["strategy"],
            "llm_calls": len(requests),
            "api_s": [round(x, 3) for x in api],
            "direct_s": [round(x, 3) for x in direct],
            "pair_ratios": [round(p, 4) for p in pairs],
            "api_completion_tokens": api_tokens,
            "direct_completion_tokens": direct_tokens,
            "prompt_tokens": prompt_tokens,
            "max_tokens": [r.body.get("max_tokens") for r in requests],
        }
    return res
