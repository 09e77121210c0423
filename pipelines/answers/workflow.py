"""`/ask` as a LlamaIndex Workflow: retrieve, decide, maybe condense, answer.

    AskInput ─retrieve─▶ ContextRetrieved ─route─▶ ContextReady ─answer─▶ AskComplete
                                            └────▶ CondenseQueued ─condense─▶ ContextReady

`auto` condenses the retrieved context (the tree summarizer, focused on the question) when its
tokens exceed the model's `summarization_threshold` or do not fit the answer call; `summarize`
always condenses; `direct` never does and keeps the best chunks that fit. A space with nothing
relevant, and chunks none of whose sentences supports the question (`citations.py`), get a
plain statement that the documents do not say — `grounded: false`, no LLM call. The answer
streams (`AnswerDelta`), in the language of the question, checked, and retried once if wrong;
each sentence is checked against the passages before it is sent (`writing.py`, `support.py`),
and an answer left with nothing borne out — or a model set to `answer: extractive` — gives the
passage that answers, quoted. Then the sentences it rests on are cited (`AskCitation`), and each
answer sentence names the citation it rests on (`support`). A follow-up is asked as written
(`q`, with the earlier turns in `history`); retrieval reads its condensed form (`search_by`). The
run ends with `AskComplete`, the `complete` event itself: the answer has one type from the
workflow to the HTTP edge.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field
from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent

from docassist.pipelines.answers.citations import SUPPORT_MIN, Citation, Citer, Evidence, place
from docassist.pipelines.answers.events import AnswerDelta, AskCitation, AskComplete, AskSources
from docassist.pipelines.answers.phrases import NO_CONTEXT, NOT_IN_DOCUMENTS, phrase, quote_frame, quoted
from docassist.pipelines.answers.support import SentenceSupport, SupportChecker, supported_by
from docassist.pipelines.answers.writing import AnswerWriter, Written, cut_quote, llm_judge
from docassist.pipelines.language import detect_language, label
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import Prompt, render
from docassist.pipelines.logs import event
from docassist.pipelines.search.retrieval import Retriever, Source
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.summaries.events import SummaryProgress
from docassist.pipelines.summaries.run_state import RunStats
from docassist.pipelines.summaries.workflow import SummarizeInput, SummarizeWorkflow, SummaryResult

Mode = Literal["auto", "summarize", "direct"]
TextOf = Callable[[str, str], str | None]
CITED_CHUNKS = 8  # the best chunks whose sentences are weighed for support and citations


def format_context(sources: list[Source]) -> str:
    return "\n\n".join(f"[{i}] {s.filename}:\n{s.text}" for i, s in enumerate(sources, 1))


class AskInput(StartEvent):
    q: str
    space_id: str
    top_k: int
    mode: Mode
    language: str | None = None  # a follow-up: the language the user asked in
    search_by: str | None = None  # what retrieval is given, where not `q` (a follow-up condensed from the history)
    cite_by: str | None = None  # what citations are ranked by, where not `q` (a follow-up's rewrite by the model)
    history: str = ""  # the earlier turns, for the model to read what the follow-up `q` refers to
    max_tokens: int | None = None  # the client's cap on the answer (`/v1`'s max_tokens), within the service's
    scope: Scope = Scope()  # the documents it reads: the whole space when empty


class ContextRetrieved(Event):
    sources: list[Source]
    context: str
    context_tokens: int


class CondenseQueued(Event):
    context: str


class ContextReady(Event):
    context: str
    summarized: bool
    declined: bool = False  # the chunks do not support an answer: say so, no LLM call


class AskState(BaseModel):
    q: str = ""
    search_by: str | None = None
    cite_by: str | None = None
    history: str = ""
    space_id: str = ""
    mode: Mode = "auto"
    language: str = "en"
    max_tokens: int | None = None
    context_tokens: int = 0
    sources: list[Source] = Field(default_factory=list)
    stats: RunStats = Field(default_factory=RunStats)
    timing: dict[str, float] = Field(default_factory=dict)
    started: float = 0.0
    lap_started: float = 0.0
    finish: str | None = None  # the answer call's finish reason, where one is made

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timing[f"{name}_s"] = round(now - self.lap_started, 3)
        self.lap_started = now


class AskWorkflow(Workflow):
    def __init__(
        self,
        retriever: Retriever,
        caller: LLMCaller,
        answer_endpoint: Endpoint,
        map_endpoint: Endpoint,
        reduce_endpoint: Endpoint,
        citer: Citer,
        text_of: TextOf,
    ) -> None:
        super().__init__(timeout=None)
        self.retriever, self.caller = retriever, caller
        self.answer_ep, self.map_ep, self.reduce_ep = answer_endpoint, map_endpoint, reduce_endpoint
        self.citer, self.text_of = citer, text_of
        self.evidence: Evidence | None = None  # one workflow per question

    @property
    def _output(self) -> int:
        return self.caller.limits.output(self.answer_ep.spec.summarization_max_output)

    async def _answer_room(self, st: AskState) -> int:
        """Tokens of context the answer call can take."""
        empty = render(
            "answer",
            self.answer_ep.style,
            st.language,
            context="",
            question=st.q,
            instructions=self.answer_ep.spec.instructions,
        )
        overhead = await self.answer_ep.tokens.exact_prompt(empty, self.answer_ep.style)
        return self.caller.limits.room(self.answer_ep.spec.context_window, overhead, self._output)

    @step
    async def retrieve(self, ctx: Context[AskState], ev: AskInput) -> ContextRetrieved:
        language = ev.language or detect_language(ev.q).code
        async with ctx.store.edit_state() as st:
            st.q, st.space_id, st.mode, st.language = ev.q, ev.space_id, ev.mode, language
            st.cite_by, st.max_tokens = ev.cite_by, ev.max_tokens
            st.search_by, st.history = ev.search_by, ev.history
            st.started = st.lap_started = time.perf_counter()
        event(
            f"[Language Detection] Input text language: {label(language)}",
            "(the latest question of the conversation)" if ev.language else "(the question)",
            language=language,
        )
        result = await self.retriever.search(ev.search_by or ev.q, ev.space_id, ev.top_k, ev.scope)
        context = format_context(result.sources)
        tokens = await self.answer_ep.tokens.exact(context) if context else 0
        async with ctx.store.edit_state() as st:
            st.timing["retrieval_embed_ms"] = result.timing.embed_ms
            st.timing["retrieval_search_ms"] = result.timing.search_ms
            st.context_tokens = tokens
            st.lap("retrieval")
        event(
            "[RAG CONTEXT]",
            f"{len(result.sources)} chunks from {len({s.doc_id for s in result.sources})} documents · "
            f"{len(context):,} chars · {tokens:,} tokens (threshold {self.answer_ep.spec.summarization_threshold:,})",
            chunks=len(result.sources),
            context_tokens=tokens,
        )
        return ContextRetrieved(sources=result.sources, context=context, context_tokens=tokens)

    @step
    async def route(self, ctx: Context[AskState], ev: ContextRetrieved) -> ContextReady | CondenseQueued:
        st = await ctx.store.get_state()
        mode = st.mode
        if not ev.sources:
            event(f"[RAG] Mode: {mode} → no context", "nothing in the space matches; no LLM call")
            return ContextReady(context="", summarized=False)
        threshold = self.answer_ep.spec.summarization_threshold
        room = await self._answer_room(st)
        if mode == "summarize" or (mode == "auto" and (ev.context_tokens > threshold or ev.context_tokens > room)):
            why = (
                "forced"
                if mode == "summarize"
                else f"{ev.context_tokens:,} tokens > "
                + (f"threshold {threshold:,}" if ev.context_tokens > threshold else f"answer room {room:,}")
            )
            event(f"[RAG] Mode: {mode} → summarize context first", why, mode=mode, summarized=True)
            await self._choose(ctx, ev.sources, summarized=True)
            return CondenseQueued(context=ev.context)
        kept = ev.sources
        if ev.context_tokens > room:  # direct: keep the best chunks that fit
            kept, used = [], 0
            for s in ev.sources:
                n = await self.answer_ep.tokens.exact(format_context([s]))
                if used + n > room:
                    break
                kept.append(s)
                used += n
            used = await self.answer_ep.tokens.exact(format_context(kept)) if kept else 0
            while len(kept) > 1 and used > room:  # the separators between chunks count too
                kept.pop()
                used = await self.answer_ep.tokens.exact(format_context(kept))
            async with ctx.store.edit_state() as st:
                st.context_tokens = used  # what the answer is given, not what was retrieved
        self.evidence = await self.citer.evidence(st.search_by or st.q, kept[:CITED_CHUNKS])
        if not self.evidence.answerable:  # a question the chunks do not answer (an overview is condensed above)
            event(
                f"[RAG] Mode: {mode} → not in the documents",
                f"best supporting sentence {self.evidence.support:.3f} < {SUPPORT_MIN:.2f}; no LLM call",
                support=round(self.evidence.support, 4),
            )
            await self._choose(ctx, ev.sources, summarized=False)
            return ContextReady(context="", summarized=False, declined=True)
        event(
            f"[RAG] Mode: {mode} → answer from the chunks",
            f"{len(kept)} of {len(ev.sources)} chunks, {ev.context_tokens:,} tokens ≤ threshold {threshold:,}"
            if len(kept) == len(ev.sources)
            else f"kept {len(kept)} of {len(ev.sources)} chunks to fit {room:,}",
            mode=mode,
            summarized=False,
        )
        await self._choose(ctx, kept, summarized=False)
        return ContextReady(context=format_context(kept), summarized=False)

    async def _choose(self, ctx: Context[AskState], sources: list[Source], summarized: bool) -> None:
        async with ctx.store.edit_state() as st:
            st.sources = sources
        ctx.write_event_to_stream(
            AskSources(sources=sources, summarized=summarized, context_tokens=st.context_tokens, language=st.language)
        )

    @step
    async def condense(self, ctx: Context[AskState], ev: CondenseQueued) -> ContextReady:
        st = await ctx.store.get_state()
        handler = SummarizeWorkflow(self.caller, self.map_ep, self.reduce_ep).run(
            start_event=SummarizeInput(text=ev.context, language=st.language, question=st.q)
        )
        try:
            async for progress in handler.stream_events():
                if isinstance(progress, SummaryProgress):
                    ctx.write_event_to_stream(progress)
            result: SummaryResult = await handler
        finally:  # this step cancelled (its answer abandoned): the nested run has tasks of its own to stop
            if not handler.is_done():
                with contextlib.suppress(Exception):
                    await handler.cancel_run()
        async with ctx.store.edit_state() as edited:
            edited.stats = result.stats.model_copy(update={"parts": 0})
            edited.lap("summarize")
        return ContextReady(context=result.summary, summarized=True)

    @step
    async def answer(self, ctx: Context[AskState], ev: ContextReady) -> AskComplete:
        st = await ctx.store.get_state()
        written: Written | None = None
        text = sent = ""
        if ev.declined:  # the chunks do not hold an answer: say so rather than let the model invent one
            text = phrase(NOT_IN_DOCUMENTS, st.language, space=st.space_id)
            ctx.write_event_to_stream(AnswerDelta(delta=text))
        elif not ev.context:  # an empty space: the same
            text = phrase(NO_CONTEXT, st.language, space=st.space_id)
            ctx.write_event_to_stream(AskSources(sources=[], summarized=False, context_tokens=0, language=st.language))
            ctx.write_event_to_stream(AnswerDelta(delta=text))
        elif self.answer_ep.spec.answer == "generative" or ev.summarized:
            written = await self._write(ctx, st, ev)
            text = written.text
        else:
            event(
                "[ANSWER] The passage that answers, quoted",
                f"{self.answer_ep.settings.model} is set to answer=extractive (config/llm_models.json); no LLM call",
                how="extractive",
            )
            if not st.max_tokens:  # its first words are known: the reader sees them while the passage is chosen
                sent = quote_frame(st.language)[0]
                ctx.write_event_to_stream(AnswerDelta(delta=sent))
        async with ctx.store.edit_state() as st:
            st.lap("answer")
        citations: list[Citation] = []
        support: list[SentenceSupport] = []
        if ev.context:
            citations = await self._cite(st.cite_by or st.q, st.sources)
            if written is not None and written.kept:
                support = supported_by(citations, written.kept)
            elif written is None or self.answer_ep.spec.verify != "off":  # extractive, or nothing borne out
                text, support = await self._quote(ctx, st, citations, written, sent)
            await self._place(st.space_id, citations)
        for citation in citations:
            ctx.write_event_to_stream(AskCitation(citation=citation))
        async with ctx.store.edit_state() as st:
            st.lap("cite")
        return AskComplete(
            answer=text,
            mode=st.mode,
            summarized=ev.summarized,
            language=st.language,
            context_tokens=st.context_tokens if ev.context else 0,
            sources=st.sources if ev.context or ev.declined else [],
            usage=st.stats.usage(),
            timing={**st.timing, "total_s": round(time.perf_counter() - st.started, 3)},
            citations=citations,
            grounded=bool(citations),
            truncated=st.finish == "length",
            support=support,
        )

    async def _write(self, ctx: Context[AskState], st: AskState, ev: ContextReady) -> Written:
        """The model's answer, each sentence checked against the passages (unless `verify: off`)."""
        spec = self.answer_ep.spec

        async def record(final: Completion) -> None:
            async with ctx.store.edit_state() as edited:
                edited.stats.add(final)
                edited.finish = final.finish_reason  # the last call's: its text is the answer

        def prompt(strict: bool) -> Prompt:
            return render(
                "answer",
                self.answer_ep.style,
                st.language,
                context=ev.context,
                question=st.q,
                history=st.history,
                strict=strict,
                instructions=spec.instructions,
            )

        checker = None
        if spec.verify != "off":
            if self.evidence is None:  # a condensed context: checked against its best chunks
                self.evidence = await self.citer.evidence(st.search_by or st.q, st.sources[:CITED_CHUNKS])
            judge = llm_judge(self.caller, self.answer_ep, st.language) if spec.verify == "llm" else None
            checker = SupportChecker(
                self.citer.embed_model, self.citer.lane, self.evidence, st.q, judge=judge, language=st.language
            )
        writer = AnswerWriter(
            self.caller, self.answer_ep, checker, lambda d, r: ctx.write_event_to_stream(AnswerDelta(delta=d, reset=r)),
            record,
        )  # fmt: skip
        return await writer.write(prompt, st.language, min(self._output, st.max_tokens or self._output))

    async def _quote(
        self, ctx: Context[AskState], st: AskState, citations: list[Citation], written: Written | None, sent: str
    ) -> tuple[str, list[SentenceSupport]]:
        """The answer as the passage that answers, quoted (within the client's `max_tokens`), after
        `sent`, its first words already sent; the decline when there is none."""
        reset = written is not None and written.reset_pending  # a language retry began and sent nothing
        if not citations:
            text = phrase(NOT_IN_DOCUMENTS, st.language, space=st.space_id)
            ctx.write_event_to_stream(AnswerDelta(delta=text, reset=reset or bool(sent)))
            return text, []
        best = citations[0]
        text = quoted(st.language, best.quote)
        if st.max_tokens and await self.answer_ep.tokens.exact(text) > st.max_tokens:
            text = await cut_quote(best.quote, st.language, st.max_tokens, self.answer_ep.tokens.exact)
            async with ctx.store.edit_state() as edited:
                edited.finish = "length"
        again = bool(sent) and not text.startswith(sent)  # cut to fit without its introduction: start over
        rest = text if again or not sent else text[len(sent) :]
        ctx.write_event_to_stream(AnswerDelta(delta=rest, reset=reset or again))
        shown = " ".join(best.quote.split())  # as the answer shows it
        return text, [SentenceSupport(text=shown if shown in text else text, citation=0, score=best.score)]

    async def _cite(self, question: str, used: list[Source]) -> list[Citation]:
        """The sentences of the chunks the answer was given that support it."""
        if not used:
            return []
        if self.evidence is None:  # a condensed context: its best chunks' sentences
            self.evidence = await self.citer.evidence(question, used[:CITED_CHUNKS])
        elif self.evidence.question != question:  # ranked by another question than retrieval was given
            self.evidence = await self.citer.refocus(self.evidence, question)
        return await self.citer.cite(self.evidence, used)

    async def _place(self, space_id: str, citations: list[Citation]) -> None:
        """Each quote's offsets in its document's text."""
        texts = {}
        for doc_id in {c.doc_id for c in citations}:
            texts[doc_id] = await self.citer.lane.run(self.text_of, space_id, doc_id) or ""
        place(citations, texts)
