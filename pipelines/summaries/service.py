"""Summaries of whole documents: the cache, single-flight runs, and the stream of events.

A summary is looked up by a key over the document's content, the models that make it, the
prompt version, the target language and the output limit. On a miss, one run (a "flight")
computes it; every request for the same key — a `/summarize`, a `/summarize-stream`, a
background job — follows that one run instead of starting another. A flight nobody follows
any more is cancelled (a client that disconnects stops its LLM work), unless a job pins it.
A new flight sends `start` the moment it exists, with the plan estimated from the text's
length (`estimate_plan`): counting tokens may wait behind another request's generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from docassist.pipelines import errors
from docassist.pipelines.documents.language import label
from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import PROMPT_VERSION
from docassist.pipelines.logs import event
from docassist.pipelines.summaries.store import CachedSummary, SummaryStore
from docassist.pipelines.summaries.workflow import (
    StepProgress,
    SummarizeWorkflow,
    SummaryDelta,
    SummaryJobSpec,
    SummaryStarted,
    estimate_plan,
)


@dataclass
class SummaryEvent:
    """One event of SPEC.md section 5: `start`, `processing`, `summary`, `complete` or `error`."""

    name: str
    data: dict[str, Any]


@dataclass
class Flight:
    key: str
    task: asyncio.Task | None = None
    events: list[SummaryEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    followers: int = 0
    pinned: bool = False
    done: bool = False

    def emit(self, name: str, **data: Any) -> None:
        self.events.append(SummaryEvent(name, data))
        self.changed.set()

    async def follow(self) -> AsyncIterator[SummaryEvent]:
        """Every event of the run so far, then each new one, until it ends."""
        index = 0
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.done:
                return
            self.changed.clear()
            if index < len(self.events) or self.done:
                continue
            await self.changed.wait()


class SummaryService:
    def __init__(
        self,
        store: SummaryStore,
        caller: LLMCaller,
        map_endpoint: Endpoint,
        reduce_endpoint: Endpoint,
        read_text: Callable[[DocumentRecord], str],
        content_hash: Callable[[DocumentRecord], str],
    ) -> None:
        self.store, self.caller = store, caller
        self.map_endpoint, self.reduce_endpoint = map_endpoint, reduce_endpoint
        self.read_text, self.content_hash = read_text, content_hash
        self.flights: dict[str, Flight] = {}

    @property
    def max_output(self) -> int:
        return min(self.reduce_endpoint.spec.summarization_max_output, self.caller.max_tokens)

    def cache_key(self, content_sha256: str, language: str) -> str:
        """Over the text's SHA-256 (stored at ingest: a hit reads no text), the models, the
        reduce window, the prompt version, the target language and the output limit."""
        parts = [
            content_sha256,
            self.map_endpoint.settings.model,
            self.reduce_endpoint.settings.model,
            str(self.reduce_endpoint.spec.context_window),
            PROMPT_VERSION,
            language,
            str(self.max_output),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def cached(self, record: DocumentRecord, language: str | None = None) -> tuple[str, CachedSummary | None]:
        """(cache key, cached summary or None)."""
        key = self.cache_key(self.content_hash(record), language or record.language)
        return key, self.store.get_summary(key)

    def start(
        self, record: DocumentRecord, language: str | None = None, force: bool = False, pinned: bool = False
    ) -> Flight:
        """The flight computing this summary: a running one, a finished cached one, or a new one."""
        lang = language or record.language
        looked_up = time.perf_counter()
        key, hit = self.cached(record, lang)
        lookup_ms = round((time.perf_counter() - looked_up) * 1000, 2)
        if key in self.flights:
            flight = self.flights[key]
            flight.pinned = flight.pinned or pinned
            return flight
        flight = Flight(key=key, pinned=pinned)
        if hit is not None and not force:
            flight.emit(
                "start",
                doc_id=record.doc_id,
                strategy=hit.strategy,
                chunks=hit.timing.get("parts", 1),
                language=hit.language,
                eta_s=0.0,
                cached=True,
            )
            flight.emit("summary", delta=hit.summary)
            flight.emit(
                "complete",
                summary=hit.summary,
                cached=True,
                language=hit.language,
                strategy=hit.strategy,
                timing={"lookup_ms": lookup_ms, "cached_at": hit.created_at, "computed": hit.timing},
                usage=hit.usage,
            )
            flight.done = True
            return flight
        self.flights[key] = flight
        plan = estimate_plan(
            record.chars, lang, self.map_endpoint, self.reduce_endpoint, self.caller, self.max_output
        )  # `start` goes out now, before any tokenizer or LLM call
        flight.emit(
            "start",
            doc_id=record.doc_id,
            strategy=plan.strategy,
            chunks=plan.parts,
            language=lang,
            eta_s=plan.eta_s,
            cached=False,
        )
        flight.task = asyncio.create_task(self._run(flight, record, lang), name=f"summary-{key[:8]}")
        return flight

    async def _run(self, flight: Flight, record: DocumentRecord, language: str) -> None:
        started = time.perf_counter()
        event(
            f"[Language Detection] Input text language: {label(record.language)}",
            f"summary language: {label(language)}",
            language=record.language,
            target=language,
        )
        handler = None
        try:
            text = await asyncio.to_thread(self.read_text, record)
            spec = SummaryJobSpec(
                text=text,
                language=language,
                map_endpoint=self.map_endpoint,
                reduce_endpoint=self.reduce_endpoint,
                caller=self.caller,
                max_output=self.max_output,
                run_key=flight.key,
                memo_get=self.store.get_partial,
                memo_put=self.store.put_partial,
            )
            workflow = SummarizeWorkflow(spec)
            handler = workflow.run()
            async for ev in handler.stream_events():
                if isinstance(ev, SummaryStarted):
                    announced = flight.events[0].data
                    if (ev.strategy, ev.parts) != (announced["strategy"], announced["chunks"]):
                        event(
                            "[SUMMARY] Plan differs from the estimate in `start`",
                            f"exact: {ev.strategy}, {ev.parts} part(s), {ev.tokens:,} tokens · announced from the "
                            f"text's length: {announced['strategy']}, {announced['chunks']} part(s)",
                            strategy=ev.strategy,
                            parts=ev.parts,
                        )
                elif isinstance(ev, StepProgress):
                    flight.emit(
                        "processing", stage=ev.stage, level=ev.level, done=ev.done, total=ev.total, eta_s=ev.eta_s
                    )
                elif isinstance(ev, SummaryDelta):
                    flight.emit("summary", delta=ev.delta, **({"reset": True} if ev.reset else {}))
            result = await handler
            stats = workflow.stats
            wall = time.perf_counter() - started
            usage = {
                "prompt_tokens": stats.prompt_tokens,
                "completion_tokens": stats.completion_tokens,
                "tokens_per_second": round(stats.completion_tokens / stats.llm_seconds, 1)
                if stats.llm_seconds
                else 0.0,
                "llm_calls": stats.calls,
                "resumed_calls": stats.cached_calls,
            }
            timing = {
                "total_s": round(wall, 3),
                **{f"{k}_s": round(v, 3) for k, v in stats.stages.items()},
                "llm_s": round(stats.llm_seconds, 3),
                "levels": stats.levels,
                "parts": stats.parts,
                "language_retry": stats.language_retry,
            }
            value = CachedSummary(result["summary"], language, result["strategy"], usage, timing, time.time())
            self.store.put_summary(flight.key, record.space_id, record.doc_id, value)
            self.store.drop_partials(flight.key)
            event(
                "[SUMMARY] Done",
                f"doc_id={record.doc_id} strategy={value.strategy} language={language} · "
                f"{stats.calls} LLM calls ({stats.cached_calls} resumed) · {stats.prompt_tokens:,} prompt + "
                f"{stats.completion_tokens:,} completion tokens · {wall:.1f}s "
                f"({', '.join(f'{k} {v:.1f}s' for k, v in stats.stages.items())})",
                doc_id=record.doc_id,
                usage=usage,
                timing=timing,
            )
            flight.emit(
                "complete",
                summary=value.summary,
                cached=False,
                language=language,
                strategy=value.strategy,
                timing=timing,
                usage=usage,
            )
        except asyncio.CancelledError:
            if handler is not None:
                with contextlib.suppress(Exception):
                    await handler.cancel_run()
            flight.emit("error", code="cancelled", message="the summary was cancelled")
            event("[SUMMARY] Cancelled", f"doc_id={record.doc_id}: nobody is waiting for it any more")
            raise
        except DocassistError as exc:
            flight.emit("error", code=exc.code, message=exc.message, details=exc.details)
        except Exception as exc:
            event("[SUMMARY] Failed", f"{type(exc).__name__}: {exc}", level=40, exc_info=exc)
            flight.emit("error", code="internal_error", message=f"{type(exc).__name__}: {exc}")
        finally:
            flight.done = True
            flight.changed.set()
            self.flights.pop(flight.key, None)

    @contextlib.asynccontextmanager
    async def following(self, flight: Flight) -> AsyncIterator[AsyncIterator[SummaryEvent]]:
        """Follow a flight; when the last follower of an unpinned flight leaves early, cancel it."""
        flight.followers += 1
        try:
            yield flight.follow()
        finally:
            flight.followers -= 1
            if flight.followers == 0 and not flight.pinned and not flight.done and flight.task:
                flight.task.cancel()

    async def summarize(
        self, record: DocumentRecord, language: str | None = None, force: bool = False, pinned: bool = False
    ) -> dict[str, Any]:
        """Run (or join) the flight to its end; the `complete` data, or the error raised."""
        flight = self.start(record, language, force, pinned)
        async with self.following(flight) as events:
            async for ev in events:
                if ev.name == "complete":
                    return ev.data
                if ev.name == "error":
                    raise flight_error(ev.data)
        raise DocassistError("the summary ended without a result")

    async def close(self) -> None:
        tasks = [f.task for f in self.flights.values() if f.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def flight_error(data: dict[str, Any]) -> DocassistError:
    """Rebuild the typed error a flight reported, so HTTP maps it to the right status."""
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, DocassistError) and cls.code == data.get("code"):
            return cls(data.get("message", ""), **data.get("details", {}))
    err = DocassistError(data.get("message", ""), **data.get("details", {}))
    err.code = data.get("code", "internal_error")
    return err
