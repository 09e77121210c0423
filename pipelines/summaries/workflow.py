"""Whole-document summarization as a LlamaIndex Workflow: direct when it fits, else map-reduce.

    StartEvent ─plan─▶ FinalPassQueued                      (direct: the document fits one call)
               └────▶ PartQueued × n ─summarize_part─▶ PartSummarized ─collect_level─▶
                        PartQueued × m (next level)  or  FinalPassQueued ─final_pass─▶ StopEvent

Parts are packed to fill each map call's budget (llama-index's SentenceSplitter cuts at
sentence boundaries, sized by the endpoint's own tokenizer), map calls run concurrently up
to the endpoint's limit (the endpoint's semaphore, not "every chunk at once"), and each
reduce level must shrink or the run stops with `SummarizationStalled` — the two failure
modes of llama-index's TreeSummarize. Every map/reduce output is memoised by the exact
input (`partials`), so an interrupted run resumes. The final pass streams its text; its
language is checked and the pass retried once, strictly, when it comes back wrong.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step

from docassist.pipelines.documents.language import detect_language
from docassist.pipelines.errors import ContextOverflow, SummarizationStalled
from docassist.pipelines.llm.caller import Completion, LLMCaller, Prompt
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import PROMPT_VERSION, render
from docassist.pipelines.logs import event

MAX_LEVELS = 8
MAX_RESPLIT_DEPTH = 4


# --- events written to the stream (what /summarize-stream relays) --------------------------
class SummaryStarted(Event):
    strategy: Literal["direct", "tree"]
    parts: int
    language: str
    tokens: int
    eta_s: float


class StepProgress(Event):
    stage: Literal["map", "reduce"]
    level: int
    done: int
    total: int
    eta_s: float


class SummaryDelta(Event):
    delta: str
    reset: bool = False


# --- events between steps ---------------------------------------------------------------------
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


@dataclass
class SummaryJobSpec:
    """Everything one run needs; built by the summary service."""

    text: str
    language: str
    map_endpoint: Endpoint
    reduce_endpoint: Endpoint
    caller: LLMCaller
    max_output: int
    run_key: str = ""
    question: str | None = None  # set: condense for this question (the /ask summarize pattern)
    memo_get: Callable[[str, str], tuple[str, int, int] | None] | None = None
    memo_put: Callable[[str, str, str, int, int], None] | None = None


@dataclass
class RunStats:
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    levels: int = 0
    parts: int = 1
    language_retry: bool = False

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.llm_seconds += c.seconds


def output_cap(endpoint: Endpoint, caller: LLMCaller, max_output: int, overhead: int) -> int:
    """Output allowance of a map/reduce call: a quarter of what the window leaves, at most the model's cap."""
    room = endpoint.spec.context_window - overhead - caller.safety_margin
    return max(caller.min_useful_output, min(max_output, room // 4))


def part_capacity(endpoint: Endpoint, caller: LLMCaller, overhead: int, out_cap: int) -> int:
    """Tokens of text one map/reduce call can take."""
    return endpoint.spec.context_window - overhead - out_cap - caller.safety_margin


def eta_for(endpoint: Endpoint, calls: list[int], out_cap: int) -> float:
    """Seconds for `calls` (their prompt tokens) at the endpoint's measured throughput."""
    tp = endpoint.throughput
    per_call = [tp.predict(p, min(out_cap, tp.avg_output)) for p in calls]
    return sum(per_call) / max(1, min(endpoint.settings.max_concurrency, len(calls) or 1))


@dataclass(frozen=True)
class PlanEstimate:
    strategy: Literal["direct", "tree"]
    parts: int
    tokens: int
    eta_s: float


def estimate_plan(
    chars: int,
    language: str,
    map_endpoint: Endpoint,
    reduce_endpoint: Endpoint,
    caller: LLMCaller,
    max_output: int,
    question: str | None = None,
) -> PlanEstimate:
    """The plan as far as it can be known without a tokenizer, so that `start` goes out at once
    (the tokenizer may wait behind a generation: llama.cpp's server does one request at a time).
    Same arithmetic as `plan`, with the text's tokens guessed from its length and the endpoint's
    learned characters per token; templates the server counted before are exact. `plan` then
    decides on exact counts: `processing` totals and the final strategy are exact."""
    slots: dict[str, Any] = {"question": question} if question else {}
    final_ep, map_ep = reduce_endpoint, map_endpoint
    style = final_ep.spec.prompt_style
    final_task = "focus" if question else "summarize"
    final_overhead = caller.guess_prompt_tokens(final_ep, render(final_task, style, language, text="", **slots))
    tokens = final_ep.guess_tokens(chars)
    out_final = min(max_output, caller.max_tokens)
    if final_overhead + tokens + out_final + caller.safety_margin <= final_ep.spec.context_window:
        tp = final_ep.throughput
        eta = tp.predict(final_overhead + tokens, min(out_final, tp.avg_output))
        return PlanEstimate("direct", 1, tokens, round(eta, 1))
    task = "focus" if question else "map"
    map_prompt = render(task, map_ep.spec.prompt_style, language, text="", part=99, parts=99, **slots)
    overhead = caller.guess_prompt_tokens(map_ep, map_prompt)
    out_cap = output_cap(map_ep, caller, max_output, overhead)
    capacity = max(32, part_capacity(map_ep, caller, overhead, out_cap))
    map_tokens = map_ep.guess_tokens(chars)
    parts = max(1, math.ceil(map_tokens / capacity))
    per_part = math.ceil(map_tokens / parts) + overhead
    eta = eta_for(map_ep, [per_part] * parts, out_cap) + final_ep.throughput.predict(
        min(final_ep.spec.context_window, parts * out_cap), out_final
    )
    return PlanEstimate("tree", parts, tokens, round(eta, 1))


def _node_key(task: str, endpoint: Endpoint, prompt: Prompt) -> str:
    raw = f"{PROMPT_VERSION}|{task}|{endpoint.settings.model}|{prompt.system}|{prompt.as_text()}"
    return hashlib.sha256(raw.encode()).hexdigest()


class SummarizeWorkflow(Workflow):
    """One summary run. Create one per run: it carries the run's statistics."""

    def __init__(self, spec: SummaryJobSpec, **kwargs: Any) -> None:
        super().__init__(timeout=None, **kwargs)
        self.spec = spec
        self.stats = RunStats()
        self._level_items: dict[int, int] = {}
        self._level_tokens: dict[int, int] = {0: 0}
        self._started = time.perf_counter()
        self._stage_started = self._started
        self._remaining_eta = 0.0
        self.strategy: Literal["direct", "tree"] = "direct"

    # ------------------------------------------------------------------ helpers
    @property
    def _task_for_parts(self) -> Literal["map", "focus"]:
        return "focus" if self.spec.question else "map"

    def _prompt(self, task: str, endpoint: Endpoint, text: str, strict: bool = False, **slots: Any) -> Prompt:
        if self.spec.question:
            slots.setdefault("question", self.spec.question)
        return render(
            task,
            endpoint.spec.prompt_style,
            self.spec.language,
            text=text,
            strict=strict,  # type: ignore[arg-type]
            **slots,
        )

    def _out_cap(self, endpoint: Endpoint, overhead: int) -> int:
        return output_cap(endpoint, self.spec.caller, self.spec.max_output, overhead)

    async def _overhead(self, task: str, endpoint: Endpoint) -> int:
        slots = {"part": 99, "parts": 99} if task in ("map", "focus") else {}
        return await self.spec.caller.prompt_tokens(endpoint, self._prompt(task, endpoint, "", **slots))

    def _capacity(self, endpoint: Endpoint, overhead: int, out_cap: int) -> int:
        return part_capacity(endpoint, self.spec.caller, overhead, out_cap)

    async def _tokens_per_char(self, endpoint: Endpoint, text: str) -> float:
        sample = text if len(text) <= 200_000 else text[:100_000] + text[-100_000:]
        tokens = await endpoint.count_tokens(sample)
        return tokens / max(1, len(sample))

    def _splitter(self, capacity: int, ratio: float) -> SentenceSplitter:
        def estimate(s: str) -> list[int]:
            return [0] * math.ceil(len(s) * ratio * 1.08 + 1)

        return SentenceSplitter(chunk_size=max(32, capacity), chunk_overlap=0, tokenizer=estimate)

    def _mark_stage(self, name: str) -> None:
        now = time.perf_counter()
        self.stats.stages[name] = self.stats.stages.get(name, 0.0) + (now - self._stage_started)
        self._stage_started = now

    async def _call(self, task: str, endpoint: Endpoint, prompt: Prompt, max_output: int, depth: int = 0) -> str:
        """One memoised map/reduce call; a part the server finds too long is split and retried."""
        key = _node_key(task, endpoint, prompt)
        if self.spec.memo_get and (hit := self.spec.memo_get(self.spec.run_key, key)):
            self.stats.cached_calls += 1
            return hit[0]
        try:
            result = await self.spec.caller.complete(endpoint, prompt, purpose=task, max_output=max_output)
        except ContextOverflow:
            if depth >= MAX_RESPLIT_DEPTH:
                raise
            raise _Resplit() from None
        self.stats.add(result)
        if self.spec.memo_put:
            self.spec.memo_put(self.spec.run_key, key, result.text, result.prompt_tokens, result.completion_tokens)
        return result.text

    async def _summarize_text(
        self, task: str, endpoint: Endpoint, text: str, max_output: int, depth: int = 0, **slots: Any
    ) -> str:
        try:
            return await self._call(task, endpoint, self._prompt(task, endpoint, text, **slots), max_output, depth)
        except _Resplit:
            halves = SentenceSplitter(
                chunk_size=max(16, len(text) // 8), chunk_overlap=0, tokenizer=lambda s: [0] * (len(s) // 4 + 1)
            ).split_text(text)
            mid = max(1, len(halves) // 2)
            left, right = " ".join(halves[:mid]), " ".join(halves[mid:])
            event(
                "[TREE] Re-split",
                f"the server refused a {task} input of {len(text):,} chars as too long; splitting it in two",
                level=30,
            )
            parts = await asyncio.gather(
                *(
                    self._summarize_text(task, endpoint, t, max_output, depth + 1, **slots)
                    for t in (left, right)
                    if t.strip()
                )
            )
            return "\n".join(parts)

    # ------------------------------------------------------------------ steps
    @step
    async def plan(self, ctx: Context, ev: StartEvent) -> FinalPassQueued | PartQueued | None:
        spec = self.spec
        final_ep, map_ep = spec.reduce_endpoint, spec.map_endpoint
        final_task = "focus" if spec.question else "summarize"
        final_overhead = await self._overhead(final_task, final_ep)
        text_tokens = await final_ep.count_tokens(spec.text)
        out_final = min(spec.max_output, spec.caller.max_tokens)
        fits = final_overhead + text_tokens + out_final + spec.caller.safety_margin <= final_ep.spec.context_window
        if fits:
            eta = final_ep.throughput.predict(
                final_overhead + text_tokens, min(out_final, final_ep.throughput.avg_output)
            )
            ctx.write_event_to_stream(
                SummaryStarted(
                    strategy="direct", parts=1, language=spec.language, tokens=text_tokens, eta_s=round(eta, 1)
                )
            )
            event(
                "[TREE] Plan: direct",
                f"{text_tokens:,} tokens fit one call on '{final_ep.name}' "
                f"(context {final_ep.spec.context_window:,}, output {out_final:,})",
                strategy="direct",
                tokens=text_tokens,
            )
            self._mark_stage("plan")
            return FinalPassQueued(texts=[spec.text], task=final_task)

        self.strategy = "tree"
        task = self._task_for_parts
        overhead = await self._overhead(task, map_ep)
        out_cap = self._out_cap(map_ep, overhead)
        capacity = self._capacity(map_ep, overhead, out_cap)
        if capacity < 32:
            raise SummarizationStalled(
                f"the context window of '{map_ep.name}' ({map_ep.spec.context_window}) leaves no room for text"
            )
        ratio = await self._tokens_per_char(map_ep, spec.text)
        parts = [p for p in self._splitter(capacity, ratio).split_text(spec.text) if p.strip()]
        part_tokens = [math.ceil(len(p) * ratio) + overhead for p in parts]
        eta = eta_for(map_ep, part_tokens, out_cap) + final_ep.throughput.predict(
            min(final_ep.spec.context_window, len(parts) * out_cap), out_final
        )
        self._remaining_eta = eta
        self._level_items[0] = len(parts)
        self.stats.parts = len(parts)
        self._level_tokens[0] = text_tokens
        ctx.write_event_to_stream(
            SummaryStarted(
                strategy="tree", parts=len(parts), language=spec.language, tokens=text_tokens, eta_s=round(eta, 1)
            )
        )
        event(
            "[TREE] Plan: map-reduce",
            f"{text_tokens:,} tokens > one call on '{final_ep.name}': {len(parts)} parts of ≤ {capacity:,} tokens "
            f"mapped on '{map_ep.name}' (concurrency {map_ep.settings.max_concurrency}, output ≤ {out_cap}) · "
            f"ETA {eta:.0f}s",
            strategy="tree",
            parts=len(parts),
            capacity=capacity,
        )
        self._mark_stage("plan")
        for i, part in enumerate(parts):
            ctx.send_event(PartQueued(level=0, index=i, total=len(parts), text=part))
        return None

    @step(num_workers=64)
    async def summarize_part(self, ctx: Context, ev: PartQueued) -> PartSummarized:
        spec = self.spec
        if ev.level == 0:
            task, endpoint = self._task_for_parts, spec.map_endpoint
            slots: dict[str, Any] = {"part": ev.index + 1, "parts": ev.total}
        else:
            task, endpoint, slots = "reduce", spec.reduce_endpoint, {}
        overhead = await self._overhead(task, endpoint)
        text = await self._summarize_text(task, endpoint, ev.text, self._out_cap(endpoint, overhead), **slots)
        return PartSummarized(level=ev.level, index=ev.index, text=text)

    @step
    async def collect_level(self, ctx: Context, ev: PartSummarized) -> FinalPassQueued | PartQueued | None:
        total = self._level_items[ev.level]
        stage: Literal["map", "reduce"] = "map" if ev.level == 0 else "reduce"
        done = await ctx.store.get(f"done_{ev.level}", default=0) + 1
        await ctx.store.set(f"done_{ev.level}", done)
        elapsed = time.perf_counter() - self._stage_started
        remaining = elapsed / done * (total - done) if done else self._remaining_eta
        ctx.write_event_to_stream(
            StepProgress(
                stage=stage, level=ev.level, done=done, total=total, eta_s=round(remaining + self._final_eta(), 1)
            )
        )
        collected = ctx.collect_events(ev, [PartSummarized] * total, buffer_id=f"level_{ev.level}")
        if collected is None:
            return None
        self._mark_stage(stage if ev.level == 0 else f"reduce_{ev.level}")
        summaries = [e.text for e in sorted(collected, key=lambda e: e.index) if e.text.strip()]
        return await self._next_level(ctx, ev.level, summaries)

    def _final_eta(self) -> float:
        ep = self.spec.reduce_endpoint
        return ep.throughput.predict(ep.throughput.avg_output * 4, min(self.spec.max_output, ep.throughput.avg_output))

    async def _next_level(self, ctx: Context, level: int, summaries: list[str]) -> FinalPassQueued | None:
        spec, ep = self.spec, self.spec.reduce_endpoint
        joined = "\n\n".join(summaries)
        tokens = await ep.count_tokens(joined)
        final_task = "focus" if spec.question else "reduce"
        final_overhead = await self._overhead(final_task, ep)
        out_final = min(spec.max_output, spec.caller.max_tokens)
        event(
            f"[TREE] Level {level} done",
            f"{len(summaries)} summaries, {tokens:,} tokens (level input {self._level_tokens.get(level, 0):,} tokens)",
            level_tokens=tokens,
        )
        if tokens >= self._level_tokens.get(level, tokens + 1):
            raise SummarizationStalled(
                f"level {level} did not shrink ({self._level_tokens[level]:,} → {tokens:,} tokens); stopping "
                "instead of looping",
                level=level,
            )
        if final_overhead + tokens + out_final + spec.caller.safety_margin <= ep.spec.context_window:
            self.stats.levels = level + 1
            return FinalPassQueued(texts=summaries, task=final_task)
        if level + 1 >= MAX_LEVELS:
            raise SummarizationStalled(f"still too long after {MAX_LEVELS} levels", level=level)
        overhead = await self._overhead("reduce", ep)
        capacity = self._capacity(ep, overhead, self._out_cap(ep, overhead))
        groups: list[list[str]] = [[]]
        group_tokens = 0
        counts = await asyncio.gather(*(ep.count_tokens(s) for s in summaries))
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
        self._level_items[level + 1] = len(groups)
        self._level_tokens[level + 1] = tokens
        for i, group in enumerate(groups):
            ctx.send_event(PartQueued(level=level + 1, index=i, total=len(groups), text="\n\n".join(group)))
        return None

    @step
    async def final_pass(self, ctx: Context, ev: FinalPassQueued) -> StopEvent:
        spec, ep = self.spec, self.spec.reduce_endpoint
        text = "\n\n".join(ev.texts)
        out = min(spec.max_output, spec.caller.max_tokens)
        summary = ""
        for attempt in (0, 1):
            prompt = self._prompt(ev.task, ep, text, strict=attempt == 1)
            summary = await self._stream_final(ctx, ep, prompt, out, reset=attempt == 1)
            detected = detect_language(summary).code if summary else spec.language
            if detected == spec.language or len(summary) < 20:
                break
            self.stats.language_retry = True
            event(
                "[Language Check] Wrong language, retrying once",
                f"expected {spec.language}, got {detected}",
                level=30,
                expected=spec.language,
                got=detected,
            )
        self._mark_stage("final")
        return StopEvent(result={"summary": summary, "strategy": self.strategy})

    async def _stream_final(self, ctx: Context, ep: Endpoint, prompt: Prompt, out: int, reset: bool) -> str:
        final: Completion | None = None
        first = True
        async for item in self.spec.caller.stream(ep, prompt, purpose="final", max_output=out):
            if isinstance(item, Completion):
                final = item
            else:
                ctx.write_event_to_stream(SummaryDelta(delta=item, reset=reset and first))
                first = False
        assert final is not None
        self.stats.add(final)
        return final.text


class _Resplit(Exception):
    """Internal: the server refused an input as too long."""
