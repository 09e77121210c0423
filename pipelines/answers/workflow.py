"""`/ask` as a LlamaIndex Workflow: retrieve, decide, maybe condense, answer.

    StartEvent ─retrieve─▶ ContextRetrieved ─route─▶ ContextReady ─answer─▶ StopEvent
                                              └────▶ CondenseQueued ─condense─▶ ContextReady

`mode=auto` condenses the retrieved context (the tree summarizer, focused on the question)
when its tokens exceed the model's `summarization_threshold` or do not fit the answer call;
`summarize` always condenses; `direct` never does and keeps the best chunks that fit. The
answer is written in the language of the question, checked, and retried once if wrong.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Literal

from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step

from docassist.pipelines.documents.language import detect_language, label
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import render
from docassist.pipelines.logs import event
from docassist.pipelines.search.retrieval import Retriever, Source
from docassist.pipelines.summaries.workflow import SummarizeWorkflow, SummaryJobSpec

Mode = Literal["auto", "summarize", "direct"]
NO_CONTEXT = {
    "ru": "В пространстве «{space}» не нашлось документов по этому вопросу, поэтому ответить по ним нельзя.",
    "uk": "У просторі «{space}» не знайшлося документів із цього питання, тому відповісти за ними неможливо.",
    "en": "No documents in space '{space}' match this question, so there is nothing to answer from.",
}


class ContextRetrieved(Event):
    sources: list[dict[str, Any]]
    context: str
    context_tokens: int


class CondenseQueued(Event):
    context: str


class ContextReady(Event):
    context: str
    summarized: bool


def format_context(sources: list[Source] | list[dict[str, Any]]) -> str:
    blocks = []
    for i, s in enumerate(sources, 1):
        d = s if isinstance(s, dict) else asdict(s)
        blocks.append(f"[{i}] {d['filename']}:\n{d['text']}")
    return "\n\n".join(blocks)


class AskWorkflow(Workflow):
    def __init__(
        self,
        retriever: Retriever,
        caller: LLMCaller,
        answer_endpoint: Endpoint,
        map_endpoint: Endpoint,
        reduce_endpoint: Endpoint,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=None, **kwargs)
        self.retriever, self.caller = retriever, caller
        self.answer_ep, self.map_ep, self.reduce_ep = answer_endpoint, map_endpoint, reduce_endpoint
        self.calls: list[Completion] = []
        self.condense_stats: dict[str, Any] = {}
        self.timing: dict[str, float] = {}
        self._t = time.perf_counter()

    def _lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timing[f"{name}_s"] = round(now - self._t, 3)
        self._t = now

    @property
    def _out(self) -> int:
        return min(self.answer_ep.spec.summarization_max_output, self.caller.max_tokens)

    async def _answer_room(self, ctx: Context) -> int:
        """Tokens of context the answer call can take."""
        q, lang = await ctx.store.get("q"), await ctx.store.get("language")
        empty = render("answer", self.answer_ep.spec.prompt_style, lang, context="", question=q)
        overhead = await self.caller.prompt_tokens(self.answer_ep, empty)
        return self.answer_ep.spec.context_window - overhead - self._out - self.caller.safety_margin

    @step
    async def retrieve(self, ctx: Context, ev: StartEvent) -> ContextRetrieved:
        q, space_id, top_k, mode = ev.q, ev.space_id, ev.top_k, ev.mode
        language = detect_language(q).code
        await ctx.store.set("q", q)
        await ctx.store.set("mode", mode)
        await ctx.store.set("language", language)
        await ctx.store.set("space_id", space_id)
        event(f"[Language Detection] Input text language: {label(language)}", "(the question)", language=language)
        result = await self.retriever.search(q, space_id, top_k)
        self.timing["retrieval_embed_ms"] = result.timing["embed_ms"]
        self.timing["retrieval_search_ms"] = result.timing["search_ms"]
        sources = [asdict(s) for s in result.sources]
        context = format_context(sources)
        tokens = await self.answer_ep.count_tokens(context) if context else 0
        self._lap("retrieval")
        event(
            "[RAG CONTEXT]",
            f"{len(sources)} chunks from {len({s['doc_id'] for s in sources})} documents · "
            f"{len(context):,} chars · {tokens:,} tokens (threshold "
            f"{self.answer_ep.spec.summarization_threshold:,})",
            chunks=len(sources),
            context_tokens=tokens,
        )
        return ContextRetrieved(sources=sources, context=context, context_tokens=tokens)

    @step
    async def route(self, ctx: Context, ev: ContextRetrieved) -> ContextReady | CondenseQueued:
        mode: Mode = await ctx.store.get("mode")
        await ctx.store.set("context_tokens", ev.context_tokens)
        threshold = self.answer_ep.spec.summarization_threshold
        room = await self._answer_room(ctx)
        if not ev.sources:
            event(f"[RAG] Mode: {mode} → no context", "nothing in the space matches; no LLM call")
            await ctx.store.set("sources", [])
            return ContextReady(context="", summarized=False)
        if mode == "summarize" or (mode == "auto" and (ev.context_tokens > threshold or ev.context_tokens > room)):
            why = (
                "forced"
                if mode == "summarize"
                else f"{ev.context_tokens:,} tokens > "
                + (f"threshold {threshold:,}" if ev.context_tokens > threshold else f"answer room {room:,}")
            )
            event(f"[RAG] Mode: {mode} → summarize context first", why, mode=mode, summarized=True)
            await ctx.store.set("sources", ev.sources)
            return CondenseQueued(context=ev.context)
        kept = ev.sources
        if ev.context_tokens > room:  # direct: keep the best chunks that fit
            kept, used = [], 0
            for s in ev.sources:
                n = await self.answer_ep.count_tokens(format_context([s]))
                if used + n > room:
                    break
                kept.append(s)
                used += n
        event(
            f"[RAG] Mode: {mode} → answer from the chunks",
            f"{len(kept)} of {len(ev.sources)} chunks, {ev.context_tokens:,} tokens ≤ threshold {threshold:,}"
            if len(kept) == len(ev.sources)
            else f"kept {len(kept)} of {len(ev.sources)} chunks to fit {room:,}",
            mode=mode,
            summarized=False,
        )
        await ctx.store.set("sources", kept)
        return ContextReady(context=format_context(kept), summarized=False)

    @step
    async def condense(self, ctx: Context, ev: CondenseQueued) -> ContextReady:
        spec = SummaryJobSpec(
            text=ev.context,
            language=await ctx.store.get("language"),
            map_endpoint=self.map_ep,
            reduce_endpoint=self.reduce_ep,
            caller=self.caller,
            max_output=min(self.reduce_ep.spec.summarization_max_output, self.caller.max_tokens),
            question=await ctx.store.get("q"),
        )
        wf = SummarizeWorkflow(spec)
        result = await wf.run()
        self.condense_stats = {
            "calls": wf.stats.calls,
            "prompt_tokens": wf.stats.prompt_tokens,
            "completion_tokens": wf.stats.completion_tokens,
            "strategy": result["strategy"],
            "llm_s": wf.stats.llm_seconds,
        }
        self._lap("summarize")
        return ContextReady(context=result["summary"], summarized=True)

    @step
    async def answer(self, ctx: Context, ev: ContextReady) -> StopEvent:
        q, lang = await ctx.store.get("q"), await ctx.store.get("language")
        style = self.answer_ep.spec.prompt_style
        text = ""
        if not ev.context:  # an empty space: say so rather than let the model invent an answer
            self._lap("answer")
            message = NO_CONTEXT.get(lang, NO_CONTEXT["en"]).format(space=await ctx.store.get("space_id"))
            return StopEvent(
                result={"answer": message, "summarized": False, "language": lang, "context_tokens": 0, "sources": []}
            )
        for attempt in (0, 1):
            prompt = render("answer", style, lang, context=ev.context or "—", question=q, strict=attempt == 1)
            result = await self.caller.complete(self.answer_ep, prompt, purpose="answer", max_output=self._out)
            self.calls.append(result)
            text = result.text
            got = detect_language(text).code if text else lang
            if got == lang or len(text) < 20:
                break
            event("[Language Check] Wrong language, retrying once", f"expected {lang}, got {got}", level=30)
        self._lap("answer")
        return StopEvent(
            result={
                "answer": text,
                "summarized": ev.summarized,
                "language": lang,
                "context_tokens": await ctx.store.get("context_tokens", default=0),
                "sources": await ctx.store.get("sources", default=[]),
            }
        )

    def usage(self) -> dict[str, Any]:
        prompt = sum(c.prompt_tokens for c in self.calls) + self.condense_stats.get("prompt_tokens", 0)
        completion = sum(c.completion_tokens for c in self.calls) + self.condense_stats.get("completion_tokens", 0)
        seconds = sum(c.seconds for c in self.calls) + self.condense_stats.get("llm_s", 0.0)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "tokens_per_second": round(completion / seconds, 1) if seconds else 0.0,
            "llm_calls": len(self.calls) + self.condense_stats.get("calls", 0),
        }
