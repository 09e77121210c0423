"""What the assistant's operations return about documents, uploads and models: plain typed
values the routes shape into their answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.documents.upload_store import UploadJob
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.summaries.jobs.store import Job, JobStore
from docassist.pipelines.summaries.runs.store import SummaryStore

SummaryStatus = Literal["none", "pending", "running", "done", "failed"]


@dataclass
class DocumentView:
    record: DocumentRecord
    summary_status: SummaryStatus
    job: Job | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentPage:
    """A page of a space's documents, and how many the filters keep across all pages."""

    documents: list[DocumentView]
    total: int


@dataclass
class Ingested:
    """An upload done within the wait: the document (and its summary job, if one was asked for)."""

    document: DocumentView
    duplicate: bool
    job: Job | None
    replaced: DocumentRecord | None = None  # a new version: the version it replaced
    reused_chunks: int = 0  # a new version: chunks it kept from the replaced one, not embedded again


@dataclass
class Accepted:
    """An upload still running when the wait ended: its job."""

    upload: UploadJob


@dataclass
class EndpointView:
    name: str
    model_name: str
    provider: str
    base_url: str | None
    context_window: int
    context_window_source: str
    summarization_threshold: int
    summarization_max_output: int
    prompt_style: str
    max_concurrency: int
    timeout_s: float
    tokenizer: str

    @classmethod
    def of(cls, ep: Endpoint, internals: bool) -> EndpointView:
        """`internals`: with the server's address — for operators only."""
        source = ep.context_window_source
        return cls(
            name=ep.name,
            model_name=ep.settings.model,
            provider=ep.provider.lower(),
            base_url=ep.base_url if internals else None,
            context_window=ep.spec.context_window,
            context_window_source=source if internals else source.split(":")[0],
            summarization_threshold=ep.spec.summarization_threshold,
            summarization_max_output=ep.spec.summarization_max_output,
            prompt_style=ep.spec.prompt_style,
            max_concurrency=ep.settings.max_concurrency,
            timeout_s=ep.settings.timeout_s,
            tokenizer=ep.tokens.source,
        )


@dataclass
class ModelConfig:
    endpoint: EndpointView
    profile: str
    max_tokens: int
    routing: dict[str, str]
    endpoints: dict[str, EndpointView]


def document_views(
    records: list[DocumentRecord],
    cache_key: Callable[[DocumentRecord, str], str],
    summaries: SummaryStore,
    jobs: JobStore,
    tags: Callable[[str, list[str]], dict[str, tuple[str, ...]]],
) -> list[DocumentView]:
    """Documents with their summary status and tags, in three queries however many there are."""
    if not records:
        return []
    keys = {r.doc_id: cache_key(r, r.language) for r in records}
    summarized = summaries.existing(list(keys.values()))
    ids = [r.doc_id for r in records]
    latest = jobs.latest_by_document(records[0].space_id, ids)
    tagged = tags(records[0].space_id, ids)
    views = []
    for r in records:
        job = latest.get(r.doc_id)
        status: SummaryStatus = "done" if keys[r.doc_id] in summarized else (job.status if job else "none")
        views.append(DocumentView(r, status, job, tagged.get(r.doc_id, ())))
    return views
