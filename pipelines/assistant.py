"""The assistant: every operation the service offers, in one façade over the runtime's parts.

Routes (and `docassist eval`) call these methods — and, for what needs nothing else of the
runtime, the feature service the façade builds (`conversations`: list, read, create, delete) —
and nothing below them; what they return is in `views.py`. Spaces arrive
validated and already checked against the caller's key; a document or job outside the space
asked for is `NotFound`, never a hint that it exists elsewhere. Blocking work runs on the
runtime's lanes — uploads on their own, storage reads on theirs — never on the default executor
that anything else could exhaust; `admit` hands out the per-key places of searches and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Literal, TypeVar

from docassist.pipelines import metrics
from docassist.pipelines.admission import KeyLimit, Permit
from docassist.pipelines.answers.events import AnswerDelta, AskCitation, AskComplete, AskError, AskSources
from docassist.pipelines.answers.workflow import AnswerResult, AskInput, AskWorkflow, Mode
from docassist.pipelines.conversations.condense import Condenser, Exchange
from docassist.pipelines.conversations.events import TurnComplete
from docassist.pipelines.conversations.service import Conversations
from docassist.pipelines.conversations.store import (
    ConversationStore,
)
from docassist.pipelines.documents.extract import file_kind
from docassist.pipelines.documents.pages import PAGE_DPI, stored_pdf
from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.documents.upload_store import UploadJob
from docassist.pipelines.errors import DocassistError, NotFound, shown
from docassist.pipelines.health import CAPABILITIES, HealthReport
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.search.embeddings import MAX_QUERY_TOKENS, query_tokens
from docassist.pipelines.search.retrieval import MAX_QUERY_CHARS, SearchResult
from docassist.pipelines.settings import Settings
from docassist.pipelines.spaces import check_space_id
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import SummaryComplete, SummaryProgress
from docassist.pipelines.summaries.jobs.store import Job
from docassist.pipelines.views import Accepted, DocumentView, EndpointView, Ingested, ModelConfig, document_views

T = TypeVar("T")
E = TypeVar("E", bound=StreamEvent)
JOB_POLL_S = 0.5  # how often a followed job is read again
Admission = Literal["search", "answer", "stream", "page"]


async def _last(events: AsyncIterator[StreamEvent], kind: type[E]) -> E:
    """The `kind` event that ends an answer's events; its `error` raised. Returning closes the
    events at once, which cancels the workflow and frees its LLM slot."""
    async with contextlib.aclosing(events) as stream:
        async for ev in stream:
            if isinstance(ev, kind):
                return ev
            if isinstance(ev, AskError):
                raise ev.exception()
    raise DocassistError("the answer ended without a result")


class Assistant:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        s = runtime.settings
        self.limits: dict[Admission, KeyLimit] = {
            "search": KeyLimit("searches", "SEARCH_PER_KEY", s.search_per_key, retry_after_s=1),
            "answer": KeyLimit("answers or summaries", "ANSWERS_PER_KEY", s.answers_per_key, retry_after_s=5),
            "stream": KeyLimit("job event streams", "STREAMS_PER_KEY", s.streams_per_key, retry_after_s=5),
            "page": KeyLimit("page renders", "RENDERS_PER_KEY", s.renders_per_key, retry_after_s=5),
        }

    def admit(self, kind: Admission, holder: str) -> Permit:
        """A place for one more search or answer (summaries count as answers) of `holder`, or
        `TooBusy` at once; release it when the request ends."""
        return self.limits[kind].admit(holder)

    async def _read(self, fn: Callable[[], T]) -> T:
        """A storage read, on the storage lane: uploads cannot take its threads."""
        return await self.runtime.lanes.storage.run(fn)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    # ------------------------------------------------------------------ documents
    def _view(self, record: DocumentRecord) -> DocumentView:
        return self._views([record])[0]

    def _views(self, records: list[DocumentRecord]) -> list[DocumentView]:
        rt = self.runtime
        return document_views(records, rt.summaries.cache_key, rt.summary_store, rt.job_store)

    def record(self, space_id: str, doc_id: str) -> DocumentRecord:
        check_space_id(space_id)
        record = self.runtime.registry.get(space_id, doc_id)
        if record is None:
            raise NotFound(f"no document {shown(doc_id)} in space {space_id!r}", space_id=space_id)
        return record

    async def document(self, space_id: str, doc_id: str) -> DocumentView:
        return await self._read(lambda: self._view(self.record(space_id, doc_id)))

    async def document_text(self, space_id: str, doc_id: str) -> str:
        """The text extracted from the document: what summaries and answers read."""
        return await self._read(lambda: self.runtime.registry.text_of(self.record(space_id, doc_id)))

    async def document_page(self, space_id: str, doc_id: str, number: int) -> bytes:
        """Page `number` (1-based) of a PDF document as a PNG at `PAGE_DPI`, for a reader to see
        the page a citation names. Drawn by a render worker, which reads the stored original
        itself: the file is a user's upload, never held in the service's memory, and its page
        waits on the pages lane (`RenderQueueFull` past its places), never on an upload."""
        record = await self._read(lambda: self.record(space_id, doc_id))
        source = stored_pdf(record, self.runtime.db.url)
        return await self.runtime.lanes.pages.run(self.runtime.sandbox.render_page, source, number, PAGE_DPI)

    async def documents(self, space_id: str) -> list[DocumentView]:
        check_space_id(space_id)

        def load() -> list[DocumentView]:
            return self._views(self.runtime.registry.list(space_id))

        return await self._read(load)

    def check_file(self, filename: str) -> None:
        """What a file's name tells before its bytes are read: a kind docassist reads, or 415."""
        file_kind(filename)

    async def ingest(
        self, space_id: str, filename: str, data: bytes, generate_summary: bool = False, wait: bool = False
    ) -> Ingested | Accepted:
        """Every upload runs as a job (`UploadQueueFull` when the uploads lane's queue is full); the
        caller waits `INGEST_WAIT_S` for it (`wait`: until it ends) and gets the document, or the
        job of an upload that runs on. A caller cancelled while it waits — its client left —
        stops the upload, storing nothing. A failure within the wait is raised as it is."""
        rt = self.runtime
        submitted = await rt.uploads.submit(space_id, filename, data, generate_summary)
        if submitted.duplicate is not None:
            record = submitted.duplicate.record
            view = await self._read(lambda: self._view(record))
            job = None
            if generate_summary and view.summary_status != "done":
                job = await self._read(lambda: rt.jobs.submit(record, record.language))
                view = DocumentView(record, job.status, job)
            return Ingested(view, True, job)
        running = submitted.running
        assert running is not None
        result = await rt.uploads.wait(running, None if wait else self.settings.ingest_wait_s)
        if result is None:
            upload = await rt.uploads.job(running.job.job_id)
            return Accepted(upload or running.job)

        def done() -> Ingested:
            upload = rt.uploads.store.get(running.job.job_id)
            summary = rt.job_store.get(upload.summary_job_id) if upload and upload.summary_job_id else None
            view = self._view(result.record)
            return Ingested(view, result.duplicate or submitted.joined, summary)

        return await self._read(done)

    async def delete(self, space_id: str, doc_id: str) -> None:
        """Stop the document's upload if it is still being ingested and its summary runs, then
        remove it everywhere: its vectors, files, row, the summaries and partial results of its
        space, and its jobs. Nothing about it is written afterwards."""
        rt = self.runtime
        stopped = await rt.uploads.cancel(space_id, doc_id)
        try:
            record = await self._read(lambda: self.record(space_id, doc_id))
        except NotFound:
            if stopped:
                return  # deleted before it was stored: nothing left to remove
            raise
        await self._read(lambda: rt.job_store.forget_document(space_id, doc_id))
        await rt.summaries.cancel_document(space_id, doc_id)
        if not await self._read(lambda: rt.ingestor.delete(space_id, doc_id)):
            raise NotFound(f"no document {shown(doc_id)} in space {space_id!r}", space_id=space_id)

        def forget() -> None:
            last = record.text_sha256 is None or rt.registry.twins(space_id, record.text_sha256) == 0
            rt.summary_store.forget_document(space_id, doc_id, record.text_sha256, last)

        await self._read(forget)

    # ------------------------------------------------------------------ search and answers
    async def search(self, q: str, space_id: str, top_k: int) -> SearchResult:
        return await self.runtime.retriever.search(q, space_id, top_k)

    def _ask_workflow(self) -> AskWorkflow:
        rt, routing = self.runtime, self.runtime.settings.profile.routing
        return AskWorkflow(
            rt.retriever,
            rt.caller,
            rt.endpoints[routing.answer],
            rt.endpoints[routing.map],
            rt.endpoints[routing.reduce],
            rt.citer,
            rt.registry.text_in,
        )

    async def ask_events(
        self,
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        language: str | None = None,
        cite_by: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer as events: `sources`, `processing` (when condensing), `answer` deltas, then
        `complete` or `error`; leaving early cancels the LLM work. A follow-up condensed into `q` is
        answered in `language` (the follow-up's), cited by `cite_by` if given; `max_tokens` cuts it."""
        started = time.perf_counter()
        start = AskInput(
            q=q, space_id=space_id, top_k=top_k, mode=mode, language=language, cite_by=cite_by, max_tokens=max_tokens
        )
        handler = self._ask_workflow().run(start_event=start)
        try:
            async for ev in handler.stream_events():
                if isinstance(ev, AskSources | AnswerDelta | SummaryProgress | AskCitation):
                    yield ev
            result: AnswerResult = await handler
            yield AskComplete(
                answer=result.answer,
                mode=mode,
                summarized=result.summarized,
                context_tokens=result.context_tokens,
                language=result.language,
                sources=result.sources,
                timing={**result.timing, "total_s": round(time.perf_counter() - started, 3)},
                usage=result.usage,
                citations=result.citations,
                grounded=result.grounded,
                truncated=result.truncated,
            )
        except DocassistError as exc:
            yield AskError.of(exc)
        finally:
            if not handler.done():
                with contextlib.suppress(Exception):
                    await handler.cancel_run()

    async def ask(self, q: str, space_id: str, mode: Mode, top_k: int) -> AskComplete:
        """The `complete` event of `ask_events`. Cancelling the caller closes the events at once,
        which cancels the workflow and frees its LLM slot."""
        return await _last(self.ask_events(q, space_id, mode, top_k), AskComplete)

    # ------------------------------------------------------------------ conversations
    @functools.cached_property
    def conversations(self) -> Conversations:
        """The conversations feature, which routes use directly for what needs nothing else (list,
        read, create, delete). Built on first use: the retriever it asks through exists once the
        runtime has started."""
        rt = self.runtime
        endpoint = rt.endpoints[rt.settings.profile.routing.answer]

        def fits(q: str) -> bool:  # what retrieval reads: characters, then the embedding model's tokens
            return len(q) <= MAX_QUERY_CHARS and query_tokens(rt.embed_model, q) <= MAX_QUERY_TOKENS

        condenser = Condenser(rt.caller, endpoint, fits)
        return Conversations(ConversationStore(rt.db), condenser, self.ask_events, rt.lanes.storage)

    async def turn_events(
        self, space_id: str, conversation_id: str, q: str, mode: Mode, top_k: int
    ) -> AsyncIterator[StreamEvent]:
        """A follow-up in a conversation: `NotFound` now for a conversation not in the space; then
        the events of `ask_events`, condensed from the history first, ending with `TurnComplete`
        once question and answer are stored (an answer that fails stores nothing)."""
        return await self.conversations.turn_events(space_id, conversation_id, q, mode, top_k)

    async def turn(self, space_id: str, conversation_id: str, q: str, mode: Mode, top_k: int) -> TurnComplete:
        """The `complete` event of `turn_events`."""
        return await _last(await self.turn_events(space_id, conversation_id, q, mode, top_k), TurnComplete)

    async def ask_after_events(
        self, history: list[Exchange], q: str, space_id: str, mode: Mode, top_k: int, max_tokens: int | None = None
    ) -> AsyncIterator[StreamEvent]:
        """`ask_events` of a follow-up whose history the caller holds (stateless: `/v1`)."""
        async for ev, _ in self.conversations.answer_events(history, q, space_id, mode, top_k, max_tokens):
            yield ev

    async def ask_after(
        self, history: list[Exchange], q: str, space_id: str, mode: Mode, top_k: int, max_tokens: int | None = None
    ) -> AskComplete:
        return await _last(self.ask_after_events(history, q, space_id, mode, top_k, max_tokens), AskComplete)

    # ------------------------------------------------------------------ summaries
    async def summarize(
        self, space_id: str, doc_id: str, language: str | None = None, force: bool = False
    ) -> SummaryComplete:
        record = await self._read(lambda: self.record(space_id, doc_id))
        return await self.runtime.summaries.summarize(record, language, force)

    async def summary_events(
        self, space_id: str, doc_id: str, language: str | None = None, force: bool = False
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        """The events of the document's summary run, from `start` to `complete` or `error`. The
        document is looked up now (`NotFound` before any response is sent); leaving the events
        early cancels the run unless another request or a job still needs it."""
        record = await self._read(lambda: self.record(space_id, doc_id))
        flight = await self.runtime.summaries.start(record, language, force)
        return self.runtime.summaries.following(flight, record)

    # ------------------------------------------------------------------ jobs
    async def job(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        """A summary job or an upload job of one of `spaces` (None: any), else `NotFound`."""

        def find() -> Job | UploadJob:
            upload = self.runtime.uploads.store.get(job_id)
            if upload is not None and (spaces is None or upload.space_id in spaces):
                return upload
            return self.runtime.jobs.job(job_id, spaces)

        return await self._read(find)

    async def job_events(self, job_id: str, spaces: frozenset[str] | None) -> AsyncIterator[Job | UploadJob]:
        """The job now (`NotFound` at once, before any response), then each time it changes,
        until it has ended; read from the database, so a job running on another backend moves too."""
        first = await self.job(job_id, spaces)

        async def follow() -> AsyncIterator[Job | UploadJob]:
            job = first
            yield job
            while job.status in ("pending", "running"):
                await asyncio.sleep(JOB_POLL_S)
                latest = await self.job(job_id, spaces)
                if (latest.status, latest.progress, latest.updated_at) != (job.status, job.progress, job.updated_at):
                    job = latest
                    yield job

        return follow()

    async def retry_job(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        """Queue a failed summary job again. An upload job comes back as it is: its bytes are not
        kept once it ends, so a failed upload is retried by uploading the file again."""
        found = await self.job(job_id, spaces)
        if isinstance(found, UploadJob):
            return found
        jobs = self.runtime.jobs
        return await self._read(lambda: jobs.retry(found))

    # ------------------------------------------------------------------ the service
    async def health(self, details: bool) -> HealthReport:
        """The monitor's current report (its checks run on their own threads, never behind work).
        `details`: with what failed and where (error texts name servers) — for operators."""
        report = await self.runtime.health_monitor.report()
        return report if details else report.without_details()

    def model_config(self, endpoint: str | None = None, internals: bool = False) -> ModelConfig:
        """The models in force; `internals` adds the servers' addresses (for operators)."""
        rt, routing = self.runtime, self.runtime.settings.profile.routing
        name = endpoint or routing.answer
        if name not in rt.endpoints:
            raise NotFound(f"no endpoint named {shown(name)}", endpoints=sorted(rt.endpoints))
        return ModelConfig(
            endpoint=EndpointView.of(rt.endpoints[name], internals),
            profile=rt.settings.profile_name,
            max_tokens=rt.part_limits.llm.max_tokens,
            routing={"map": routing.map, "reduce": routing.reduce, "answer": routing.answer},
            endpoints={n: EndpointView.of(ep, internals) for n, ep in rt.endpoints.items()},
        )

    async def metrics(self) -> tuple[bytes, str]:
        """The Prometheus text of this process (of every worker, with `serve --workers N`) and the
        deployment's jobs by state, and its content type. Read on the storage lane: it queries the
        database."""
        rt = self.runtime

        def counts() -> metrics.JobCounts:
            runner = getattr(rt, "uploads", None)  # the serving role's, once started
            uploads = runner.store.counts() if runner is not None else {}
            return metrics.JobCounts(summaries=rt.job_store.counts(), uploads=uploads)

        return await self._read(lambda: metrics.scrape(counts))

    async def spaces(self, reach: frozenset[str] | None) -> list[str]:
        """The spaces a caller can ask over: a limited key's own spaces; for a key for every space
        (`None`), every space that holds a document."""
        if reach is not None:
            return sorted(reach)
        return await self._read(self.runtime.registry.spaces)


__all__ = ["CAPABILITIES", "Accepted", "Assistant", "DocumentView", "Ingested", "ModelConfig"]
