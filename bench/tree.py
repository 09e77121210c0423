"""Our summarization vs LlamaIndex's own `tree_summarize`, same documents, same LLM.

The LlamaIndex side is what a typical script does: `OpenAILike` at the service's llama.cpp
server (same model, temperature and window, output capped like our summaries: 512 tokens),
`SentenceSplitter()` with its default sizes into nodes, and
`get_response_synthesizer(response_mode="tree_summarize")` with its default prompts. A
counting subclass of `OpenAILike` counts its calls and the server-reported tokens. Our side
is `POST /summarize` on the ingested document. Quality is ROUGE against the human references
(evals.metrics.rouge); documents are the shortest QMSum and SQuALITY dev documents past the context window.
"""

from __future__ import annotations

import time
from typing import Any

from llama_index.core import get_response_synthesizer
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document, NodeWithScore
from llama_index.llms.openai_like import OpenAILike

from docassist.bench.core import Context, Result, ingest, stored_text, summarize
from docassist.bench.corpus import LONG_SETS, cut, long_documents
from docassist.bench.llama import TEMPERATURE
from docassist.bench.stats import ratio
from docassist.evals.metrics import rouge

SPACE = "bench_tree"
QUERY = "Summarize this document."


class CountingOpenAILike(OpenAILike):
    """`OpenAILike` that counts its completion calls and the tokens the server reports."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        response = super().complete(prompt, formatted=formatted, **kwargs)
        usage = getattr(response.raw, "usage", None) or (response.raw or {}).get("usage") or {}
        get = usage.get if isinstance(usage, dict) else lambda k, d=0: getattr(usage, k, d)
        self.calls += 1
        self.prompt_tokens += int(get("prompt_tokens", 0) or 0)
        self.completion_tokens += int(get("completion_tokens", 0) or 0)
        return response


def llama_index_summary(ctx: Context, text: str) -> dict[str, Any]:
    cfg = ctx.service.config["endpoints"][ctx.service.config["endpoint"]]
    llm = CountingOpenAILike(
        model=ctx.service.model,
        api_base=ctx.service.llama_url,
        api_key="bench",
        is_chat_model=cfg["prompt_style"] == "chat",
        context_window=cfg["context_window"],
        max_tokens=min(cfg["summarization_max_output"], ctx.service.config["max_tokens"]),  # the service's cap
        temperature=TEMPERATURE,
        timeout=1800,
    )
    started = time.perf_counter()
    nodes = SentenceSplitter().get_nodes_from_documents([Document(text=text)])
    synthesizer = get_response_synthesizer(llm=llm, response_mode="tree_summarize")
    response = synthesizer.synthesize(QUERY, nodes=[NodeWithScore(node=n) for n in nodes])
    return {
        "seconds": time.perf_counter() - started,
        "summary": str(response),
        "llm_calls": llm.calls,
        "prompt_tokens": llm.prompt_tokens,
        "completion_tokens": llm.completion_tokens,
        "nodes": len(nodes),
    }


def run(ctx: Context) -> Result:
    res = Result("tree", "Tree summarization vs LlamaIndex tree_summarize")
    SentenceSplitter(chunk_size=64, chunk_overlap=0).split_text("Warm up. " * 200)  # nltk loads once, not timed
    # Full mode: documents past the 8,192-token window (~33k characters), so both sides really map and reduce.
    min_chars = 0 if ctx.quick else 33_000
    docs = [d for name in LONG_SETS for d in long_documents(name, ctx.sizes.tree_docs_per_set, min_chars)]
    rows = []
    for i, d in enumerate(docs):
        text = d["text"]
        if ctx.sizes.tree_max_tokens:
            text = cut(text, ctx.sizes.tree_max_tokens * 4)
        doc = ingest(ctx.http, SPACE, f"{d['id']}.txt", text)
        ours: dict[str, Any] = {}
        theirs: dict[str, Any] = {}
        for side in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
            ctx.llama.flush()
            if side == "ours":
                seconds, body = summarize(ctx.http, SPACE, doc["doc_id"], force=True)
                ours = {
                    "seconds": seconds,
                    "summary": body["summary"],
                    "llm_calls": body["usage"]["llm_calls"],
                    "prompt_tokens": body["usage"]["prompt_tokens"],
                    "completion_tokens": body["usage"]["completion_tokens"],
                    "strategy": body["strategy"],
                }
            else:
                theirs = llama_index_summary(ctx, stored_text(ctx.http, doc))
        for side in (ours, theirs):
            side["rouge"] = rouge(side["summary"], d["references"])
        rows.append({"id": d["id"], "tokens": ctx.llama.count(text), "ours": ours, "llama_index": theirs})
        ctx.log(
            f"{d['id']}: ours {ours['llm_calls']} calls {ours['seconds']:.1f}s R-L {ours['rouge']['rougeL']}; "
            f"llama-index {theirs['llm_calls']} calls {theirs['seconds']:.1f}s R-L {theirs['rouge']['rougeL']}"
        )

    def total(side: str, key: str) -> float:
        return sum(r[side][key] for r in rows)

    def mean_rouge(side: str, key: str) -> float:
        return sum(r[side]["rouge"][key] for r in rows) / len(rows)

    n = len(rows)
    res.add(
        "calls_ours_over_llama_index",
        "LLM calls, ours / LlamaIndex",
        ratio(total("ours", "llm_calls"), total("llama_index", "llm_calls")),
        baseline=f"LlamaIndex tree_summarize: {total('llama_index', 'llm_calls'):.0f} calls over {n} documents",
        goal=("<=", 1.0),
        context=f"ours {total('ours', 'llm_calls'):.0f} calls",
    )
    res.add(
        "prompt_tokens_ours_over_llama_index",
        "prompt tokens, ours / LlamaIndex",
        ratio(total("ours", "prompt_tokens"), total("llama_index", "prompt_tokens")),
        baseline=f"LlamaIndex {total('llama_index', 'prompt_tokens'):,.0f}",
        context=f"ours {total('ours', 'prompt_tokens'):,.0f}",
    )
    res.add(
        "time_ours_over_llama_index",
        "wall time, ours / LlamaIndex",
        ratio(total("ours", "seconds"), total("llama_index", "seconds")),
        baseline=f"LlamaIndex {total('llama_index', 'seconds'):.1f}s",
        goal=("<=", 1.0),
        context=f"ours {total('ours', 'seconds'):.1f}s (through HTTP)",
    )
    for key in ("rouge1", "rougeL"):
        res.add(
            f"{key}_ours_over_llama_index",
            f"{key.upper().replace('ROUGE', 'ROUGE-')} F1, ours / LlamaIndex",
            ratio(mean_rouge("ours", key), mean_rouge("llama_index", key)),
            baseline=f"LlamaIndex mean {mean_rouge('llama_index', key):.4f}",
            goal=(">=", 1.0),
            context=f"ours mean {mean_rouge('ours', key):.4f}",
        )
    res.data = {"documents": rows}
    return res
