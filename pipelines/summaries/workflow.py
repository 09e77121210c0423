"""Whole-document summarization as a LlamaIndex Workflow: direct when it fits, else map-reduce.

    SummarizeInput ─plan─▶ FinalPassQueued                      (direct: the text fits one call)
                   └────▶ PartQueued × n ─summarize_part─▶ PartSummarized ─collect_level─▶
                            PartQueued × m (next level)  or  FinalPassQueued ─final_pass─▶ SummaryResult

Parts are packed to fill each map call's budget (llama-index's SentenceSplitter cuts at
sentence boundaries), map calls run concurrently up to the endpoint's limit (its semaphore,
not "every chunk at once"), and each reduce level must shrink or the run stops with
`SummarizationStalled` — the two failure modes of llama-index's TreeSummarize. Every map and
reduce output goes through a `Memo` keyed by its exact prompt, so an interrupted run resumes.
The final pass streams; its language is checked and the pass retried once, strictly.

Per-run state (statistics, level sizes, stage clocks) lives in the workflow context; the
result is a typed `SummaryResult`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from typing import Any, Literal

from llama_index.core.node_parser import SentenceSplitter
from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent

from docassist.pipelines.errors import ContextOverflow, SummarizationStalled
from docassist.pipelines.llm.caller import Completion, LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.in_language import stream_in_language
from docassist.pipelines.llm.prompts import Prompt, prompt_version
from docassist.pipelines.logs import event
from docassist.pipelines.summaries import plan as planning
from docassist.pipelines.summaries.events import Strategy, SummaryDelta, SummaryProgress
from docassist.pipelines.summaries.run_state import Memo, NoMemo, RunState, RunStats

MAX_LEVELS = 8
MAX_RESPLIT_DEPTH = 4
MIN_PART_CAPACITY = 32


# --- events ---------------------------------------------------------------------------------
class SummarizeInput(StartEvent):
    text: str
    language: str
    question: str | None = None  # set: condense for this question (the /ask summarize pattern)


class PlanDecided(Event):
    """The exact plan, written to the stream: the service compares it with what `start` announced."""

    strategy: Strategy
    parts: int
    tokens: int
    eta_s: float


class PartQueued(Event):
    level: int
    index: int
    total: int
    text: str


class PartSummarized(Event):
    level: int
    index: int
    text: str


class FinalPassQueued(Event):
    texts: list[str]
    task: Literal["summarize", "reduce", "focus"]


class SummaryResult(StopEvent):
    summary: str
    strategy: Strategy
    stats: RunStats


class _Resplit(Exception):
    """The server refused an input as too long."""


def node_key(task: str, endpoint: Endpoint, prompt: Prompt) -> str:
    raw = f"{prompt_version()}|{task}|{endpoint.settings.model}|{prompt.system}|{prompt.as_text()}"
    return hashlib.sha256(raw.encode()).hexdigest()


class SummarizeWorkflow(Workflow):
    """One summary run per `run(...)`: `SummarizeInput` in, `SummaryResult` out."""

    def __init__(self, caller: LLMCaller, map_ep: Endpoint, reduce_ep: Endpoint, memo: Memo | None = None) -> None:
        super().__init__(timeout=None)
        self.caller, self.map_ep, self.reduce_ep = caller, map_ep, reduce_ep
        self.memo = memo or NoMemo()
        self.limits = caller.limits

    # ------------------------------------------------------------------ helpers
    def _prompt(self, st: RunState, task: str, endpoint: Endpoint, text: str, strict: bool = False, **slots: Any):
        if strict:
            slots["strict"] = True
        return planning.prompt(task, endpoint, st.language, text, st.question, **slots)

    async def _overhead(self, st: RunState, task: str, endpoint: Endpoint) -> int:
        slots = planning.PART_SLOTS if task in ("map", "focus") else {}
        return await endpoint.tokens.exact_prompt(self._prompt(st, task, endpoint, "", **slots), endpoint.style)

    async def _record(self, ctx: Context[RunState], completion: Completion | None = None) -> None:
        async with ctx.store.edit_state() as st:
            if completion is None:
                st.stats.resumed_calls += 1
            else:
                st.stats.add(completion)

    async def _call(
        self, ctx: Context[RunState], task: str, endpoint: Endpoint, prompt: Prompt, max_output: int
    ) -> str:
        """One memoised map/reduce call; a part the server finds too long raises `_Resplit`."""
        key = node_key(task, endpoint, prompt)
        if hit := await self.memo.get(key):
            await self._record(ctx)
            return hit[0]
        try:
            result = await self.caller.complete(endpoint, prompt, purpose=task, max_output=max_output)
        except ContextOverflow:
            raise _Resplit() from None
        await self._record(ctx, result)
        await self.memo.put(key, result.text, result.prompt_tokens, result.completion_tokens)
        return result.text

    async def _summarize_text(
        self,
        ctx: Context[RunState],
        task: str,
        endpoint: Endpoint,
        text: str,
        max_output: int,
        depth: int = 0,
        **slots: Any,
    ) -> str:
        st = await ctx.store.get_state()
        try:
            return await self._call(ctx, task, endpoint, self._prompt(st, task, endpoint, text, **slots), max_output)
        except _Resplit:
            if depth >= MAX_RESPLIT_DEPTH:
                raise ContextOverflow(f"'{endpoint.name}' refused a {task} input even after splitting it") from None
            halves = SentenceSplitter(
                chunk_size=max(16, len(text) // 8), chunk_overlap=0, tokenizer=lambda s: [0] * (len(s) // 4 + 1)
            ).split_text(text)
            mid = max(1, len(halves) // 2)
            event(
                "[TREE] Re-split",
                f"the server refused a {task} input of {len(text):,} chars as too long; splitting it in two",
                level=logging.WARNING,
            )
            pieces = [" ".join(halves[:mid]), " ".join(halves[mid:])]
            parts = await asyncio.gather(
                *(
                    self._summarize_text(ctx, task, endpoint, t, max_output, depth + 1, **slots)
                    for t in pieces
                    if t.strip()
                )
            )
            return "\n".join(parts)

    # ------------------------------------------------------------------ steps
    @step
    async def plan(self, ctx: Context[RunState], ev: SummarizeInput) -> FinalPassQueued | PartQueued | None:
        map_ep, final_ep = self.map_ep, self.reduce_ep
        async with ctx.store.edit_state() as st:
            st.language, st.question, st.stage_started = ev.language, ev.question, time.perf_counter()
        sizes = await planning.exact_sizes(ev.text, ev.language, ev.question, map_ep, final_ep)
        plan = planning.decide(sizes, map_ep, final_ep, self.limits)
        if plan.strategy == "direct":
            ctx.write_event_to_stream(
                PlanDecided(strategy="direct", parts=1, tokens=plan.text_tokens, eta_s=plan.eta_s)
            )
            event(
                "[TREE] Plan: direct",
                f"{plan.text_tokens:,} tokens fit one call on '{final_ep.name}' "
                f"(context {final_ep.spec.context_window:,}, output {plan.final_output:,})",
                strategy="direct",
                tokens=plan.text_tokens,
            )
            async with ctx.store.edit_state() as st:
                st.mark_stage("plan")
            return FinalPassQueued(texts=[ev.text], task=planning.task_for("summarize", ev.question))  # type: ignore[arg-type]

        if plan.part_capacity < MIN_PART_CAPACITY:
            raise SummarizationStalled(
                f"the context window of '{map_ep.name}' ({map_ep.spec.context_window}) leaves no room for text"
            )
        ratio = sizes.text_map / max(1, len(ev.text))
        parts = [p for p in _splitter(plan.part_capacity, ratio).split_text(ev.text) if p.strip()]
        plan = plan.with_parts([math.ceil(len(p) * ratio) + sizes.part_prompt for p in parts], map_ep, final_ep)
        async with ctx.store.edit_state() as st:
            st.strategy = "tree"
            st.level_items[0] = len(parts)
            st.level_tokens[0] = plan.text_tokens
            st.stats.parts = len(parts)
            st.mark_stage("plan")
        ctx.write_event_to_stream(
            PlanDecided(strategy="tree", parts=len(parts), tokens=plan.text_tokens, eta_s=plan.eta_s)
        )
        event(
            "[TREE] Plan: map-reduce",
            f"{plan.text_tokens:,} tokens > one call on '{final_ep.name}': {len(parts)} parts of ≤ "
            f"{plan.part_capacity:,} tokens mapped on '{map_ep.name}' (concurrency "
            f"{map_ep.settings.max_concurrency}, output ≤ {plan.part_output}) · ETA {plan.eta_s:.0f}s",
            strategy="tree",
            parts=len(parts),
            capacity=plan.part_capacity,
        )
        for i, part in enumerate(parts):
            ctx.send_event(PartQueued(level=0, index=i, total=len(parts), text=part))
        return None

    @step(num_workers=64)
    async def summarize_part(self, ctx: Context[RunState], ev: PartQueued) -> PartSummarized:
        st = await ctx.store.get_state()
        if ev.level == 0:
            task, endpoint = planning.task_for("map", st.question), self.map_ep
            slots: dict[str, Any] = {"part": ev.index + 1, "parts": ev.total}
        else:
            task, endpoint, slots = "reduce", self.reduce_ep, {}
        overhead = await self._overhead(st, task, endpoint)
        out = self.limits.part_output(
            endpoint.spec.context_window, overhead, self.reduce_ep.spec.summarization_max_output
        )
        text = await self._summarize_text(ctx, task, endpoint, ev.text, out, **slots)
        return PartSummarized(level=ev.level, index=ev.index, text=text)

    # one worker: with several, two parts finishing together each see the level's buffer as it was
    # before the other, and the runtime runs one of them again — its progress counted twice
    @step(num_workers=1)
    async def collect_level(self, ctx: Context[RunState], ev: PartSummarized) -> FinalPassQueued | PartQueued | None:
        async with ctx.store.edit_state() as st:
            st.level_done[ev.level] = done = st.level_done.get(ev.level, 0) + 1
        total = st.level_items[ev.level]
        stage: Literal["map", "reduce"] = "map" if ev.level == 0 else "reduce"
        elapsed = time.perf_counter() - st.stage_started
        remaining = elapsed / done * (total - done)
        ctx.write_event_to_stream(
            SummaryProgress(
                stage=stage, level=ev.level, done=done, total=total, eta_s=round(remaining + self._final_eta(), 1)
            )
        )
        collected = ctx.collect_events(ev, [PartSummarized] * total, buffer_id=f"level_{ev.level}")
        if collected is None:
            return None
        async with ctx.store.edit_state() as st:
            st.mark_stage(stage if ev.level == 0 else f"reduce_{ev.level}")
        summaries = [e.text for e in sorted(collected, key=lambda e: e.index) if e.text.strip()]  # type: ignore[attr-defined]
        return await self._next_level(ctx, ev.level, summaries)

    def _final_eta(self) -> float:
        tp = self.reduce_ep.throughput
        return tp.predict(int(tp.avg_output * 4), min(self.reduce_ep.spec.summarization_max_output, tp.avg_output))

    async def _next_level(self, ctx: Context[RunState], level: int, summaries: list[str]) -> FinalPassQueued | None:
        ep = self.reduce_ep
        st = await ctx.store.get_state()
        joined = "\n\n".join(summaries)
        tokens = await ep.tokens.exact(joined)
        task = planning.task_for("reduce", st.question)
        final_overhead = await self._overhead(st, task, ep)
        final_output = self.limits.output(ep.spec.summarization_max_output)
        previous = st.level_tokens.get(level, tokens + 1)
        event(
            f"[TREE] Level {level} done",
            f"{len(summaries)} summaries, {tokens:,} tokens (level input {st.level_tokens.get(level, 0):,} tokens)",
            level_tokens=tokens,
        )
        if tokens >= previous:
            raise SummarizationStalled(
                f"level {level} did not shrink ({previous:,} → {tokens:,} tokens); stopping instead of looping",
                level=level,
            )
        if len(summaries) == 1 or self.limits.fits(ep.spec.context_window, final_overhead, tokens, final_output):
            # one summary left goes to the final pass whatever its size: the call's budget gives it the
            # output room the window leaves, and nothing is left to merge
            async with ctx.store.edit_state() as st:
                st.stats.levels = level + 1
            return FinalPassQueued(texts=summaries, task=task)  # type: ignore[arg-type]
        if level + 1 >= MAX_LEVELS:
            raise SummarizationStalled(f"still too long after {MAX_LEVELS} levels", level=level)
        overhead = await self._overhead(st, "reduce", ep)
        capacity = self.limits.part_capacity(ep.spec.context_window, overhead, ep.spec.summarization_max_output)
        groups: list[list[str]] = [[]]
        group_tokens = 0
        counts = await asyncio.gather(*(ep.tokens.exact(s) for s in summaries))
        for summary, n in zip(summaries, counts, strict=True):
            if groups[-1] and group_tokens + n > capacity:
                groups.append([])
                group_tokens = 0
            groups[-1].append(summary)
            group_tokens += n
        if len(groups) >= len(summaries):
            raise SummarizationStalled(
                f"level {level + 1} cannot merge: each of the {len(summaries)} summaries fills a reduce call alone",
                level=level + 1,
            )
        async with ctx.store.edit_state() as st:
            st.level_items[level + 1] = len(groups)
            st.level_tokens[level + 1] = tokens
        for i, group in enumerate(groups):
            ctx.send_event(PartQueued(level=level + 1, index=i, total=len(groups), text="\n\n".join(group)))
        return None

    @step
    async def final_pass(self, ctx: Context[RunState], ev: FinalPassQueued) -> SummaryResult:
        ep = self.reduce_ep
        st = await ctx.store.get_state()
        text = "\n\n".join(ev.texts)
        out = self.limits.output(ep.spec.summarization_max_output)

        async def record(final: Completion) -> None:
            await self._record(ctx, final)

        summary, retried = await stream_in_language(
            self.caller,
            ep,
            lambda strict: self._prompt(st, ev.task, ep, text, strict=strict),
            st.language,
            "final",
            out,
            lambda delta, reset: ctx.write_event_to_stream(SummaryDelta(delta=delta, reset=reset)),
            record,
        )
        if retried:
            async with ctx.store.edit_state() as edited:
                edited.stats.language_retry = True
        async with ctx.store.edit_state() as st:
            st.mark_stage("final")
        return SummaryResult(summary=summary, strategy=st.strategy, stats=st.stats)


def _splitter(capacity: int, tokens_per_char: float) -> SentenceSplitter:
    """Sentence-aware parts of at most `capacity` tokens, sized from the text's measured ratio."""

    def estimate(s: str) -> list[int]:
        return [0] * math.ceil(len(s) * tokens_per_char * 1.08 + 1)

    return SentenceSplitter(chunk_size=max(MIN_PART_CAPACITY, capacity), chunk_overlap=0, tokenizer=estimate)
