"""Summaries of whole documents: the cache, single-flight runs, and the events followers see.

A summary is looked up by a key over the space, the document's text, the models and windows
that make it, the prompts, the target language and the output limits. The space is part of
the key: a summary, a partial result or a running flight of one space is never visible from
another. On a miss, one run (a flight) computes it; every request for the same key — a
`/summarize`, a `/summarize-stream`, a background job — follows that run. A new flight sends
`start` the moment it exists, with the plan estimated from the text's length. Its database reads
and writes (the cache, partial results, the text) run on the storage lane it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from llama_index.core.workflow.handler import WorkflowHandler

from docassist.pipelines import metrics
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.errors import Cancelled, DocassistError
from docassist.pipelines.lanes import Lane
from docassist.pipelines.language import label
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import prompt_version, templates
from docassist.pipelines.logs import event
from docassist.pipelines.settings import Routing
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries import plan as planning
from docassist.pipelines.summaries.events import (
    SummaryComplete,
    SummaryDelta,
    SummaryError,
    SummaryProgress,
    SummarySentence,
    SummaryStart,
    last_event,
)
from docassist.pipelines.summaries.runs.board import Elsewhere, FlightBoard, OwnerGone
from docassist.pipelines.summaries.runs.flights import Flight, RemoteFlight
from docassist.pipelines.summaries.runs.store import CachedSummary, RunOf, SummaryStore
from docassist.pipelines.summaries.workflow import PlanDecided, SummarizeInput, SummarizeWorkflow, SummaryResult

# a summary's sentences, each tied to the passage of its document it rests on (the serving role's
# search parts; a process without them leaves the summary untied, and a serving one ties it when read)
Sourcer = Callable[[DocumentRecord, str], Awaitable[list[SummarySentence]]]


class RunMemo:
    """The workflow's `Memo` for one run, over the summary store's partial results (on `lane`)."""

    def __init__(self, store: SummaryStore, run: RunOf, lane: Lane) -> None:
        self.store, self.run, self.lane = store, run, lane

    async def get(self, node_key: str) -> tuple[str, int, int] | None:
        return await self.lane.run(self.store.get_partial, self.run.key, node_key)

    async def put(self, node_key: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        await self.lane.run(self.store.put_partial, self.run, node_key, text, prompt_tokens, completion_tokens)


class SummaryService:
    def __init__(
        self,
        store: SummaryStore,
        caller: LLMCaller,
        endpoints: Mapping[str, Endpoint],
        routing: Routing,
        registry: Registry,
        board: FlightBoard,
        lane: Lane,
        sourcer: Sourcer | None = None,
    ) -> None:
        """`endpoints`: the process's, by name, which exist once it has started — the service is
        built before them and reads `routing`'s map and reduce endpoints when a run needs them.
        `board`: where runs meet — `LocalFlightBoard` for a process alone, `SharedFlightBoard`
        across processes. `lane`: where the database is read and written."""
        self.store, self.caller, self.registry, self.board, self.lane = store, caller, registry, board, lane
        self.endpoints, self.routing, self.sourcer = endpoints, routing, sourcer
        self.read_text, self.content_hash = registry.text_of, registry.content_hash
        self.flights: dict[str, Flight] = {}

    @property
    def map_ep(self) -> Endpoint:
        return self.endpoints[self.routing.map]

    @property
    def reduce_ep(self) -> Endpoint:
        return self.endpoints[self.routing.reduce]

    @property
    def max_output(self) -> int:
        return self.caller.limits.output(self.reduce_ep.spec.summarization_max_output)

    def cache_key(self, record: DocumentRecord, language: str) -> str:
        """Over the space, the text's SHA-256 (stored at ingest: a hit reads no text), the models
        and their windows, the prompt templates, the target language and the output limits."""
        limits = self.caller.limits
        parts = [
            record.space_id,
            self.content_hash(record),
            self.map_ep.settings.model,
            str(self.map_ep.spec.context_window),
            self.reduce_ep.settings.model,
            str(self.reduce_ep.spec.context_window),
            prompt_version(),
            templates()["fingerprint"],
            language,
            str(self.max_output),
            str(limits.max_tokens),
            str(limits.safety_margin),
        ]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def is_cached(self, record: DocumentRecord, language: str) -> bool:
        """Whether the summary of `record` in `language` is stored (a database read)."""
        return bool(self.store.existing([self.cache_key(record, language)]))

    def run_of(self, record: DocumentRecord, language: str) -> RunOf:
        return RunOf(self.cache_key(record, language), record.space_id, record.doc_id, self.content_hash(record))

    async def start(
        self, record: DocumentRecord, language: str | None = None, force: bool = False, pinned: bool = False
    ) -> Flight | RemoteFlight:
        """The flight computing this summary: a running one (here or, with shared flights, in
        another process), a finished cached one, or a new one."""
        lang = language or record.language
        looked_up = time.perf_counter()
        key = self.cache_key(record, lang)
        if key in self.flights:
            flight = self.flights[key]
            flight.pinned = flight.pinned or pinned
            return flight
        hit = None if force else await self.lane.run(self.store.get, key)
        if key in self.flights:  # started while we looked
            return self.flights[key]
        if hit is not None:
            return await self._cached_flight(key, record, hit, looked_up)
        claim = await self.board.claim(key)
        if isinstance(claim, Elsewhere):
            return RemoteFlight(key, record.space_id, record.doc_id, lang, claim.run, pinned)
        if claim.contested and not force and (hit := await self.lane.run(self.store.get, key)) is not None:
            await self.board.release(key, claim.run)  # computed by the owner that just finished
            return await self._cached_flight(key, record, hit, looked_up)
        flight = Flight(
            key=key, space_id=record.space_id, doc_id=record.doc_id, language=lang, run=claim.run, pinned=pinned
        )
        self.flights[key] = flight
        metrics.summary_cache(hit=False)
        self.board.launch(flight)
        sizes = planning.estimated_sizes(record.chars, lang, None, self.map_ep, self.reduce_ep)
        plan = planning.decide(sizes, self.map_ep, self.reduce_ep, self.caller.limits)
        flight.emit(
            SummaryStart(
                doc_id=record.doc_id, strategy=plan.strategy, chunks=plan.parts, language=lang, eta_s=plan.eta_s
            )
        )
        flight.task = asyncio.create_task(self._run(flight, record, lang, force), name=f"summary-{key[:8]}")
        return flight

    async def _cached_flight(self, key: str, record: DocumentRecord, hit: CachedSummary, looked_up: float) -> Flight:
        """A finished summary, its sentences tied to their passages first where they are not yet."""
        if hit.sentences is None and (tied := await self._tie(record, hit.summary)) is not None:
            hit.sentences = tied
            await self.lane.run(self.store.put_sentences, key, tied)
        metrics.summary_cache(hit=True)
        flight = Flight(key=key, space_id=record.space_id, doc_id=record.doc_id, language=hit.language)
        lookup_ms = round((time.perf_counter() - looked_up) * 1000, 2)
        flight.emit(
            SummaryStart(
                doc_id=record.doc_id,
                strategy=hit.strategy,
                chunks=hit.parts,
                language=hit.language,
                eta_s=0.0,
                cached=True,
            )
        )
        flight.emit(SummaryDelta(delta=hit.summary))
        flight.emit(
            SummaryComplete(
                doc_id=record.doc_id,
                summary=hit.summary,
                cached=True,
                language=hit.language,
                strategy=hit.strategy,
                timing={"lookup_ms": lookup_ms, "cached_at": hit.created_at, "computed": hit.timing},
                usage=hit.usage,
                sentences=_of_document(hit.sentences or [], record.doc_id),
            )
        )
        flight.finish()
        return flight

    async def _run(self, flight: Flight, record: DocumentRecord, language: str, force: bool) -> None:
        started = time.perf_counter()
        event(
            f"[Language Detection] Input text language: {label(record.language)}",
            f"summary language: {label(language)}",
            language=record.language,
            target=language,
        )
        handler = None
        exists = functools.partial(self.lane.run, self.registry.exists, record.space_id, record.doc_id)
        watcher = asyncio.create_task(self.board.watch(flight, exists))
        try:
            run = self.run_of(record, language)
            if force:  # recompute: nothing from an earlier, unfinished run is reused
                await self.lane.run(self.store.drop_partials, run.key)
            text = await self.lane.run(self.read_text, record)
            workflow = SummarizeWorkflow(self.caller, self.map_ep, self.reduce_ep, RunMemo(self.store, run, self.lane))
            handler = workflow.run(start_event=SummarizeInput(text=text, language=language))
            await self._relay(handler, flight)
            result: SummaryResult = await handler
            sentences = await self._tie(record, result.summary)
            value = await self._store(run, record, language, result, sentences, time.perf_counter() - started)
            flight.emit(
                SummaryComplete(
                    doc_id=record.doc_id,
                    summary=value.summary,
                    cached=False,
                    language=language,
                    strategy=value.strategy,
                    timing=value.timing,
                    usage=value.usage,
                    sentences=value.sentences or [],
                )
            )
        except asyncio.CancelledError:
            if handler is not None:
                with contextlib.suppress(Exception):
                    await handler.cancel_run()
            flight.emit(SummaryError(code="cancelled", message="the summary was cancelled"))
            event("[SUMMARY] Cancelled", f"doc_id={record.doc_id}: nobody is waiting for it any more")
            raise
        except DocassistError as exc:
            flight.emit(SummaryError.of(exc))
        except Exception as exc:
            event("[SUMMARY] Failed", f"{type(exc).__name__}: {exc}", level=logging.ERROR, exc_info=exc)
            flight.emit(SummaryError(code="internal_error", message="the summary failed; the service log has details"))
        finally:
            watcher.cancel()
            flight.finish()
            self.flights.pop(flight.key, None)

    @staticmethod
    async def _relay(handler: WorkflowHandler, flight: Flight) -> None:
        """The run's progress and deltas to its followers; a plan other than the one `start`
        announced (from the text's length) logged."""
        announced = flight.events[0]
        async for ev in handler.stream_events():
            if isinstance(ev, PlanDecided) and isinstance(announced, SummaryStart):
                if (ev.strategy, ev.parts) != (announced.strategy, announced.chunks):
                    event(
                        "[SUMMARY] Plan differs from the estimate in `start`",
                        f"exact: {ev.strategy}, {ev.parts} part(s), {ev.tokens:,} tokens · announced from the "
                        f"text's length: {announced.strategy}, {announced.chunks} part(s)",
                        strategy=ev.strategy,
                        parts=ev.parts,
                    )
            elif isinstance(ev, SummaryProgress | SummaryDelta):
                flight.emit(ev)

    async def _tie(self, record: DocumentRecord, summary: str) -> list[SummarySentence] | None:
        """The summary's sentences tied to their passages; None without the search parts, or when
        they fail (a summary is never lost to its sources)."""
        if self.sourcer is None or not summary.strip():
            return None
        started = time.perf_counter()
        try:
            sentences = await self.sourcer(record, summary)
        except Exception as exc:  # the summary is kept without them
            message = exc.message if isinstance(exc, DocassistError) else f"{type(exc).__name__}: {exc}"
            event("[SUMMARY] Sentences not tied to passages", message, level=logging.WARNING, exc_info=exc)
            return None
        seconds = time.perf_counter() - started
        tied = sum(bool(s.citations) for s in sentences)
        event(
            "[SUMMARY] Sentences tied to their passages",
            f"doc_id={record.doc_id} · {tied} of {len(sentences)} sentences with a passage · {seconds:.2f}s",
            doc_id=record.doc_id,
            seconds=round(seconds, 3),
        )
        return sentences

    async def _store(
        self, run: RunOf, record: DocumentRecord, language: str, result: SummaryResult,
        sentences: list[SummarySentence] | None, wall: float,
    ) -> CachedSummary:  # fmt: skip
        """The summary cached, unless its document was deleted meanwhile (`Cancelled`); where its
        seconds went, logged."""
        stats = result.stats
        value = CachedSummary(
            result.summary, language, result.strategy, stats.usage(), stats.timing(wall), time.time(), stats.parts,
            sentences,
        )  # fmt: skip
        if not await self.lane.run(self.store.put_if_document_exists, run, value):
            raise Cancelled("the document was deleted while its summary was written", doc_id=record.doc_id)
        event(
            "[SUMMARY] Done",
            f"doc_id={record.doc_id} strategy={value.strategy} language={language} · "
            f"{stats.calls} LLM calls ({stats.resumed_calls} resumed) · {stats.prompt_tokens:,} prompt + "
            f"{stats.completion_tokens:,} completion tokens · {wall:.1f}s "
            f"({', '.join(f'{k} {v:.1f}s' for k, v in stats.stages.items())})",
            doc_id=record.doc_id,
            usage=value.usage.model_dump(),
            timing=value.timing,
        )
        return value

    @contextlib.asynccontextmanager
    async def following(
        self, flight: Flight | RemoteFlight, record: DocumentRecord
    ) -> AsyncIterator[AsyncIterator[StreamEvent]]:
        """Follow a flight as `record`'s summary. The board counts its followers: alone, the last
        follower of an unpinned flight leaving early cancels it at once; on a shared board, the
        run's owner stops a run nobody follows in any process (`SharedFlightBoard.watch`)."""
        async with self.board.following(flight):
            source = flight.follow() if isinstance(flight, Flight) else self._remote(flight, record)
            yield self._as_record(source, record)

    async def _remote(self, flight: RemoteFlight, record: DocumentRecord) -> AsyncIterator[StreamEvent]:
        """A run owned elsewhere; if its owner dies, take it over here and go on from its events."""
        try:
            async for ev in self.board.events(flight):
                yield ev
            return
        except OwnerGone:
            event("[SUMMARY] Taking over a run whose process stopped", f"doc_id={record.doc_id}", level=logging.WARNING)
        successor = await self.start(record, flight.language, pinned=flight.pinned)
        async with self.following(successor, record) as events:
            async for ev in events:
                if not isinstance(ev, SummaryStart):  # its followers already saw the run start
                    yield ev

    @staticmethod
    async def _as_record(events: AsyncIterator[StreamEvent], record: DocumentRecord) -> AsyncIterator[StreamEvent]:
        async for ev in events:
            if isinstance(ev, SummaryStart | SummaryComplete) and ev.doc_id != record.doc_id:
                ev = ev.model_copy(update={"doc_id": record.doc_id})  # a twin document of the same space
            yield ev

    async def summarize(
        self, record: DocumentRecord, language: str | None = None, force: bool = False
    ) -> SummaryComplete:
        """Run (or join) the flight to its end; the `complete` event, or the error raised."""
        flight = await self.start(record, language, force)
        async with self.following(flight, record) as events:
            return await last_event(events, SummaryComplete, "summary")

    async def cancel_document(self, space_id: str, doc_id: str) -> int:
        """Stop every run of a deleted document, pinned or not; returns how many were running."""
        flights = [f for f in self.flights.values() if (f.space_id, f.doc_id) == (space_id, doc_id)]
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*(f.task for f in flights if f.task), return_exceptions=True)
        return len(flights)

    async def close(self) -> None:
        tasks = [f.task for f in self.flights.values() if f.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _of_document(sentences: list[SummarySentence], doc_id: str) -> list[SummarySentence]:
    """A cached summary's sentences for `doc_id`: a summary is shared by the documents of a space
    with the same text, whose offsets are the same, so only the id changes."""
    return [
        s.model_copy(update={"citations": [c.model_copy(update={"doc_id": doc_id}) for c in s.citations]})
        for s in sentences
    ]
