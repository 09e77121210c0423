"""The assistant: every operation the service offers, in one thin façade over its features.

Each feature is a class of its own beside the code it drives — `Library` (the documents feature:
uploads, a space's documents, their text and pages, deleting one), `Summaries`, `Answers` (search
and ask), `Conversations`, `Jobs` — and `ServiceInfo` tells about the service itself. The façade
builds each from the runtime's parts on first use (the search parts exist once the runtime has
started) and hands each call on in one line. Routes (and `docassist eval`) call these methods, or
a feature it exposes for what needs nothing else (`conversations`: list, read, create, delete;
`feedback`: verdicts on answers), and nothing below them; what they return is in `views.py`.
`admit` hands out the per-key places of searches, answers, job event streams and page renders.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from docassist.pipelines.admission import KeyLimit, Permit
from docassist.pipelines.answers.events import AskComplete
from docassist.pipelines.answers.service import Answers
from docassist.pipelines.answers.workflow import Mode
from docassist.pipelines.conversations.condense import Condenser, Exchange
from docassist.pipelines.conversations.events import TurnComplete
from docassist.pipelines.conversations.feedback import Feedback
from docassist.pipelines.conversations.feedback_store import FeedbackStore
from docassist.pipelines.conversations.service import Conversations
from docassist.pipelines.conversations.store import ConversationStore
from docassist.pipelines.documents.catalog import KEEP, DocumentQuery, Titled
from docassist.pipelines.documents.folder_diff import FolderDiff, FolderFile
from docassist.pipelines.documents.highlight import Highlight
from docassist.pipelines.documents.pages import RenderedPage
from docassist.pipelines.documents.upload_store import UploadJob
from docassist.pipelines.documents.versions import Version
from docassist.pipelines.health import CAPABILITIES, HealthReport
from docassist.pipelines.identity.service import Identity
from docassist.pipelines.library import Library
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.search.retrieval import SearchResult
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.search_parts import SearchParts
from docassist.pipelines.service_info import ServiceInfo
from docassist.pipelines.settings import Settings
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import SummaryComplete
from docassist.pipelines.summaries.jobs.service import Jobs
from docassist.pipelines.summaries.jobs.store import Job
from docassist.pipelines.summaries.service import Summaries
from docassist.pipelines.views import Accepted, DocumentPage, DocumentView, Ingested, ModelConfig

Admission = Literal["search", "answer", "stream", "page"]


def key_limits(settings: Settings) -> dict[Admission, KeyLimit]:
    """The per-key places of each kind of request, from the settings."""
    s = settings
    return {
        "search": KeyLimit("searches", "SEARCH_PER_KEY", s.search_per_key, retry_after_s=1),
        "answer": KeyLimit("answers or summaries", "ANSWERS_PER_KEY", s.answers_per_key, retry_after_s=5),
        "stream": KeyLimit("job event streams", "STREAMS_PER_KEY", s.streams_per_key, retry_after_s=5),
        "page": KeyLimit("page renders", "RENDERS_PER_KEY", s.renders_per_key, retry_after_s=5),
    }


class Assistant:
    def __init__(self, runtime: Runtime) -> None:
        """A runtime of the serving role: the worker role has no search parts to serve from."""
        if runtime.search is None:
            raise ValueError("the assistant serves requests: it needs a runtime of the serve role")
        self.runtime: Runtime = runtime
        self.search_parts: SearchParts = runtime.search
        self.limits = key_limits(runtime.settings)

    # each feature is built on first use, by a request: the runtime has started and loaded its parts
    @functools.cached_property
    def library(self) -> Library:
        rt, parts = self.runtime, self.search_parts.loaded
        return Library(
            rt.registry, parts.uploads, parts.ingestor, parts.sandbox, rt.summaries, rt.jobs, rt.lanes, rt.db.url,
            rt.settings.ingest_wait_s,
        )  # fmt: skip

    @functools.cached_property
    def summaries(self) -> Summaries:
        return Summaries(self.library.find, self.runtime.summaries)

    @functools.cached_property
    def answers(self) -> Answers:
        rt, parts = self.runtime, self.search_parts.loaded
        return Answers(
            parts.retriever, parts.citer, parts.embed_model, rt.caller, rt.endpoints, rt.settings.profile.routing,
            rt.registry.text_in,
        )  # fmt: skip

    @functools.cached_property
    def conversations(self) -> Conversations:
        """The conversations feature, which routes use directly for what needs nothing else (list,
        read, create, delete)."""
        rt, answers = self.runtime, self.answers
        condenser = Condenser(rt.caller, answers.endpoint, answers.fits)
        return Conversations(ConversationStore(rt.db), condenser, answers, rt.lanes.storage)

    @functools.cached_property
    def feedback(self) -> Feedback:
        """Readers' verdicts on answers, and the `/ask` answers kept to be rated (routes use it directly)."""
        return Feedback(FeedbackStore(self.runtime.db), self.runtime.lanes.storage)

    @functools.cached_property
    def jobs(self) -> Jobs:
        return Jobs(self.runtime.jobs, self.search_parts.loaded.uploads, self.runtime.lanes.storage)

    @functools.cached_property
    def service(self) -> ServiceInfo:
        rt, uploads = self.runtime, self.search_parts.upload_store
        return ServiceInfo(
            rt.settings, rt.part_limits.llm, rt.endpoints, rt.health_monitor, rt.job_store, uploads, rt.lanes.storage
        )

    def admit(self, kind: Admission, holder: str) -> Permit:
        """A place for one more search or answer (summaries count as answers) of `holder`, or
        `TooBusy` at once; release it when the request ends."""
        return self.limits[kind].admit(holder)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def identity(self) -> Identity:
        """Sign-in, sessions, tokens and the audit trail (built with the runtime, before start)."""
        assert self.runtime.identity is not None  # the serving role has one
        return self.runtime.identity

    # ------------------------------------------------------------------ documents
    async def document(self, space_id: str, doc_id: str) -> DocumentView:
        return await self.library.get(space_id, doc_id)

    async def document_text(self, space_id: str, doc_id: str) -> str:
        return await self.library.text(space_id, doc_id)

    async def document_page(
        self, space_id: str, doc_id: str, number: int, highlight: Highlight | None = None
    ) -> RenderedPage:
        return await self.library.page(space_id, doc_id, number, highlight)

    async def documents(self, space_id: str, query: DocumentQuery | None = None) -> DocumentPage:
        return await self.library.list(space_id, query)

    async def describe_document(
        self, space_id: str, doc_id: str, tags: list[str] | None = None, title: Titled = KEEP
    ) -> DocumentView:
        return await self.library.describe(space_id, doc_id, tags, title)

    async def spaces(self, reach: frozenset[str] | None) -> list[str]:
        return await self.library.spaces(reach)

    def check_file(self, filename: str) -> None:
        self.library.check_file(filename)

    async def ingest(
        self,
        space_id: str,
        filename: str,
        data: bytes,
        generate_summary: bool = False,
        wait: bool = False,
        replace: bool = False,
        tags: list[str] | None = None,
    ) -> Ingested | Accepted:
        return await self.library.ingest(space_id, filename, data, generate_summary, wait, replace, tags)

    async def replace(
        self, space_id: str, doc_id: str, filename: str, data: bytes, generate_summary: bool = False,
        wait: bool = False, tags: list[str] | None = None,
    ) -> Ingested | Accepted:  # fmt: skip
        return await self.library.replace(space_id, doc_id, filename, data, generate_summary, wait, tags)

    async def diff_folder(self, space_id: str, files: Sequence[FolderFile], delete: bool) -> FolderDiff:
        return await self.library.diff_folder(space_id, files, delete)

    async def versions(self, space_id: str, doc_id: str) -> list[Version]:
        return await self.library.versions(space_id, doc_id)

    async def version_text(self, space_id: str, doc_id: str, n: int) -> str:
        return await self.library.version_text(space_id, doc_id, n)

    async def delete(self, space_id: str, doc_id: str) -> None:
        await self.library.delete(space_id, doc_id)

    # ------------------------------------------------------------------ search and answers
    async def search(self, q: str, space_id: str, top_k: int, scope: Scope | None = None) -> SearchResult:
        await self.library.check_scope(space_id, scope)
        return await self.answers.search(q, space_id, top_k, scope)

    async def ask_events(
        self,
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        language: str | None = None,
        cite_by: str | None = None,
        max_tokens: int | None = None,
        scope: Scope | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer's events; `NotReady` at once for a scope naming a document still being read."""
        await self.library.check_scope(space_id, scope)
        return self.answers.events(q, space_id, mode, top_k, language, cite_by, max_tokens, scope)

    async def ask(self, q: str, space_id: str, mode: Mode, top_k: int, scope: Scope | None = None) -> AskComplete:
        await self.library.check_scope(space_id, scope)
        return await self.answers.ask(q, space_id, mode, top_k, scope)

    # ------------------------------------------------------------------ conversations
    async def turn_events(
        self,
        space_id: str,
        conversation_id: str,
        q: str,
        mode: Mode,
        top_k: int,
        owner: str | None = None,
        scope: Scope | None = None,
    ) -> AsyncIterator[StreamEvent]:
        await self.library.check_scope(space_id, scope)
        return await self.conversations.turn_events(space_id, conversation_id, q, mode, top_k, owner, scope)

    async def turn(
        self,
        space_id: str,
        conversation_id: str,
        q: str,
        mode: Mode,
        top_k: int,
        owner: str | None = None,
        scope: Scope | None = None,
    ) -> TurnComplete:
        await self.library.check_scope(space_id, scope)
        return await self.conversations.turn(space_id, conversation_id, q, mode, top_k, owner, scope)

    async def ask_after_events(
        self,
        history: list[Exchange],
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        max_tokens: int | None = None,
        scope: Scope | None = None,
    ) -> AsyncIterator[StreamEvent]:
        await self.library.check_scope(space_id, scope)
        return self.conversations.after_events(history, q, space_id, mode, top_k, max_tokens, scope)

    async def ask_after(
        self,
        history: list[Exchange],
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        max_tokens: int | None = None,
        scope: Scope | None = None,
    ) -> AskComplete:
        await self.library.check_scope(space_id, scope)
        return await self.conversations.ask_after(history, q, space_id, mode, top_k, max_tokens, scope)

    # ------------------------------------------------------------------ summaries
    async def summarize(
        self, space_id: str, doc_id: str, language: str | None = None, force: bool = False
    ) -> SummaryComplete:
        return await self.summaries.summarize(space_id, doc_id, language, force)

    async def summary_events(
        self, space_id: str, doc_id: str, language: str | None = None, force: bool = False
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        return await self.summaries.events(space_id, doc_id, language, force)

    # ------------------------------------------------------------------ jobs
    async def job(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        return await self.jobs.job(job_id, spaces)

    async def job_events(self, job_id: str, spaces: frozenset[str] | None) -> AsyncIterator[Job | UploadJob]:
        return await self.jobs.events(job_id, spaces)

    async def retry_job(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        return await self.jobs.retry(job_id, spaces)

    # ------------------------------------------------------------------ the service
    async def health(self, details: bool) -> HealthReport:
        return await self.service.health(details)

    def model_config(self, endpoint: str | None = None, internals: bool = False) -> ModelConfig:
        return self.service.model_config(endpoint, internals)

    async def metrics(self) -> tuple[bytes, str]:
        return await self.service.metrics()


__all__ = ["CAPABILITIES", "Accepted", "Assistant", "DocumentView", "Ingested", "ModelConfig"]
