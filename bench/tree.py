"""Our tree summarization vs LlamaIndex's `tree_summarize`: the algorithms, compared fairly.

A service of its own runs with a small window (4,096 tokens in a full run) so every document
takes the tree path on both sides: four long English documents (the shortest QMSum and SQuALITY dev documents past the
window) and one Russian one (the longest XQuAD-ru dev articles joined; a full run only). Both sides use the same
llama.cpp server (same model, window, greedy decoding), the same output cap per call and the
same stop sequences, and — for the comparison of the algorithms — the same prompt text: our map
prompt (a completion-style prompt ending in the target language's cue and primer) becomes
LlamaIndex's `summary_template`, so calls, prompt tokens and time measure how each packs and
reduces, not what it asks. Separately, LlamaIndex with its defaults (its question-answering
prompt, no stop sequence) is reported as what a user gets out of the box. Per document: LLM
calls, prompt tokens (the server's count), wall time, and ROUGE against the references (for the
Russian article, which has none, only the costs).
"""

from __future__ import annotations

import time
from typing import Any

from llama_index.core import PromptTemplate, get_response_synthesizer
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import Document, NodeWithScore
from llama_index.llms.openai_like import OpenAILike

from docassist.bench.core import Context, Result, ingest, summarize
from docassist.bench.corpus import cut, long_documents
from docassist.bench.service import start_service
from docassist.bench.stats import ratio
from docassist.evals.datasets import EVALDATA, LONG_SETS, xquad_articles
from docassist.evals.metrics import rouge
from docassist.pipelines.llm.prompts import render

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


def llama_index_summary(
    url: str, api_key: str, model: str, window: int, text: str, max_tokens: int, language: str | None
) -> dict[str, Any]:
    """LlamaIndex's tree_summarize on `text`; with `language`, our prompt and stop sequences, else its defaults."""
    ours = render("map", "completion", language, text="{context_str}", part=1, parts=1) if language else None
    llm = CountingOpenAILike(
        model=model,
        api_base=url,
        api_key=api_key,
        is_chat_model=False,
        context_window=window,
        max_tokens=max_tokens,
        temperature=0.0,
        timeout=1800,
        additional_kwargs={"stop": ours.stop} if ours else {},
    )
    started = time.perf_counter()
    nodes = SentenceSplitter().get_nodes_from_documents([Document(text=text)])
    template = {"summary_template": PromptTemplate(ours.user)} if ours else {}
    synthesizer = get_response_synthesizer(llm=llm, response_mode="tree_summarize", **template)
    response = str(synthesizer.synthesize(QUERY, nodes=[NodeWithScore(node=n) for n in nodes]))
    summary = f"{ours.primer} {response.strip()}" if ours and ours.primer else response
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "summary": summary,
        "llm_calls": llm.calls,
        "prompt_tokens": llm.prompt_tokens,
        "completion_tokens": llm.completion_tokens,
        "nodes": len(nodes),
    }


def documents(ctx: Context) -> list[dict[str, Any]]:
    """Four long English documents with references, and one long Russian one (none to compare with)."""
    per_set = -(-ctx.sizes.tree_english_docs // len(LONG_SETS))
    candidates = [
        [
            {"id": d["id"], "text": d["text"], "references": d["references"], "language": "en"}
            for d in long_documents(name, per_set, min_chars=0 if ctx.quick else 20_000)
        ]
        for name in reversed(LONG_SETS)  # SQuALITY's stories first: the shorter of the two
    ]
    docs = [group[i] for i in range(per_set) for group in candidates if i < len(group)][: ctx.sizes.tree_english_docs]
    if ctx.sizes.tree_russian:
        articles = sorted(xquad_articles(EVALDATA, "dev", "ru"), key=lambda a: -len(a.text))
        russian = "\n\n".join(a.text for a in articles[:2])
        docs.append({"id": "xquad-ru-longest-2", "text": russian, "references": [], "language": "ru"})
    if ctx.sizes.tree_max_tokens:
        for d in docs:
            d["text"] = cut(d["text"], ctx.sizes.tree_max_tokens * 4)
    return docs


def run(ctx: Context) -> Result:
    window = ctx.sizes.tree_window
    res = Result("tree", f"Tree summarization vs LlamaIndex tree_summarize ({window:,}-token window)")
    SentenceSplitter(chunk_size=64, chunk_overlap=0).split_text("Warm up. " * 200)  # nltk loads once, not timed
    # the bench's llama.cpp server, its window narrowed by LLM_CONTEXT_WINDOW (which wins over what the
    # server reports): both sides call the same server with the same window
    llama = {"LLAMA_SERVER_URL": ctx.service.llama_url, "LLAMA_SERVER_API_KEY": ctx.service.llama_key}
    env = {"LLM_CONTEXT_WINDOW": str(window), "LLM_TEMPERATURE": "0", **llama, **dict(ctx.sizes.service_env)}
    service = start_service(ctx.workdir / "tree-service", **env)
    rows = []
    try:
        with service.client(timeout=3600) as http:
            cap = min(service.config["summarization_max_output"], service.config["max_tokens"])
            for i, d in enumerate(documents(ctx)):
                doc = ingest(http, SPACE, f"{d['id']}.txt", d["text"])
                text = http.get(f"/documents/{doc['doc_id']}/text", params={"space_id": SPACE}).text
                sides: dict[str, dict[str, Any]] = {}
                order = ("ours", "same_prompts", "defaults") if i % 2 == 0 else ("defaults", "same_prompts", "ours")
                for side in order:
                    if side == "ours":
                        seconds, body = summarize(http, SPACE, doc["doc_id"], force=True)
                        sides[side] = {
                            "seconds": round(seconds, 2),
                            "summary": body["summary"],
                            "llm_calls": body["usage"]["llm_calls"],
                            "prompt_tokens": body["usage"]["prompt_tokens"],
                            "completion_tokens": body["usage"]["completion_tokens"],
                            "strategy": body["strategy"],
                        }
                    else:
                        language = doc["language"] if side == "same_prompts" else None
                        sides[side] = llama_index_summary(
                            ctx.service.llama_url, ctx.service.llama_key, service.model, window, text, cap, language
                        )
                for side in sides.values():
                    side["rouge"] = rouge(side["summary"], d["references"]) if d["references"] else None
                rows.append({"id": d["id"], "language": doc["language"], "tokens": ctx.llama.count(text), **sides})
                ctx.log(
                    f"{d['id']}: ours {sides['ours']['llm_calls']} calls {sides['ours']['prompt_tokens']:,} tok "
                    f"{sides['ours']['seconds']:.0f}s ({sides['ours']['strategy']}); same prompts "
                    f"{sides['same_prompts']['llm_calls']} calls {sides['same_prompts']['prompt_tokens']:,} tok "
                    f"{sides['same_prompts']['seconds']:.0f}s; defaults {sides['defaults']['llm_calls']} calls"
                )
    finally:
        service.stop()

    for r in rows:
        ours, theirs = r["ours"], r["same_prompts"]
        res.add(
            f"calls_{r['id']}",
            f"{r['id']} ({r['language']}, {r['tokens']:,} tokens): LLM calls, ours / LlamaIndex with our prompts",
            ratio(ours["llm_calls"], theirs["llm_calls"]),
            baseline=f"LlamaIndex {theirs['llm_calls']} calls",
            goal=("<=", 1.0),
            context=f"ours {ours['llm_calls']} ({ours['strategy']}); LlamaIndex defaults {r['defaults']['llm_calls']}",
        )
        res.add(
            f"prompt_tokens_{r['id']}",
            f"{r['id']}: prompt tokens, ours / LlamaIndex with our prompts",
            ratio(ours["prompt_tokens"], theirs["prompt_tokens"]),
            baseline=f"LlamaIndex {theirs['prompt_tokens']:,}",
            goal=("<=", 1.0),
            context=f"ours {ours['prompt_tokens']:,}; wall time ours {ours['seconds']:.0f}s vs "
            f"{theirs['seconds']:.0f}s; LlamaIndex defaults {r['defaults']['prompt_tokens']:,} tokens, "
            f"{r['defaults']['seconds']:.0f}s",
        )

    def total(side: str, key: str) -> float:
        return sum(r[side][key] for r in rows)

    res.add(
        "time_ours_over_llama_index",
        "wall time over all documents, ours / LlamaIndex with our prompts",
        ratio(total("ours", "seconds"), total("same_prompts", "seconds")),
        baseline=f"LlamaIndex {total('same_prompts', 'seconds'):.0f}s",
        context=f"ours {total('ours', 'seconds'):.0f}s (through HTTP); LlamaIndex defaults "
        f"{total('defaults', 'seconds'):.0f}s",
    )
    scored = [r for r in rows if r["ours"]["rouge"]]
    for key in ("rouge1", "rougeL"):
        mean = {s: sum(r[s]["rouge"][key] for r in scored) / len(scored) for s in ("ours", "same_prompts", "defaults")}
        res.add(
            f"{key}_ours_over_llama_index",
            f"{key.upper().replace('ROUGE', 'ROUGE-')} F1 (mean of {len(scored)} English documents), ours / LlamaIndex "
            "with our prompts",
            ratio(mean["ours"], mean["same_prompts"]),
            baseline=f"LlamaIndex with our prompts {mean['same_prompts']:.4f}",
            context=f"ours {mean['ours']:.4f}; LlamaIndex defaults {mean['defaults']:.4f}",
        )
    res.data = {"window": window, "output_cap": cap, "documents": rows}
    return res
