"""Request and response models at the HTTP edge; `/docs` is generated from them.

Requests are strict: `top_k: "5"`, `top_k: true` or `force: "yes"` are refused with 422, not
coerced, and unknown fields are refused too.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from docassist.api.errors import codes_by_status
from docassist.api.scope_schemas import ScopeFields
from docassist.pipelines.answers.events import AskComplete
from docassist.pipelines.documents.catalog import MAX_TITLE_CHARS
from docassist.pipelines.documents.locations import Location
from docassist.pipelines.language import SUPPORTED_LANGUAGES
from docassist.pipelines.search.retrieval import MAX_QUERY_CHARS
from docassist.pipelines.search.scope import MAX_TAGS
from docassist.pipelines.spaces import SPACE_PATTERN
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import SummarySentence, Usage

SpaceId = Field(default="default", pattern=SPACE_PATTERN, description="1–64 of [A-Za-z0-9_-]")
Language = Literal[SUPPORTED_LANGUAGES]  # type: ignore[valid-type]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------- errors
_CODES = codes_by_status()


def _listed(codes: list[str]) -> str:
    return ", ".join(f"`{code}`" for code in codes)


class ErrorBody(BaseModel):
    code: str = Field(
        description="what went wrong, for programs: one of "
        + _listed(sorted({code for codes in _CODES.values() for code in codes}))
    )
    message: str = Field(description="the same for people")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


# what each status means; its codes are appended from the status map (`api/errors.py`)
_WHY = {
    401: "no valid API key, personal token or session (when `API_KEYS` is set or people sign in); a wrong "
    "username or password; a session that has ended; an OpenID sign-in that cannot be completed (a forged, replayed "
    "or expired callback)",
    403: "the caller cannot reach this space, or their role there does not allow this; a state-changing request "
    "riding a session cookie from another site",
    404: "no such document, job, conversation or endpoint in this space",
    408: "the request body did not arrive in time (`BODY_TIMEOUT_S`, `BODY_IDLE_TIMEOUT_S`)",
    409: "the document is still being read (its upload job is in `details.job_id`); with `Retry-After` (seconds)",
    413: "a body, file, markup, page or row count, image, text or chunk count over its limit",
    415: "a file type docassist does not read (`POST /ingest`'s `file` lists those it does)",
    422: "invalid input; for uploads, a document that cannot be read; a summary or answer that cannot be made",
    429: "more requests in flight than admitted (this key's `SEARCH_PER_KEY`, `ANSWERS_PER_KEY`, `STREAMS_PER_KEY` "
    "or `RENDERS_PER_KEY`; `UPLOAD_QUEUE`; the space's `UPLOADS_PER_SPACE`; the renders that may wait), answered "
    "at once with `Retry-After` (seconds)",
    503: "a store, an LLM endpoint, the process that embeds uploads, the LDAP directory or the OpenID provider is "
    "unavailable, the run was cancelled, or `MAX_CONNECTIONS` are open; with `Retry-After` (seconds)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route can answer, each with the envelope as JSON (also on routes whose
    success is not JSON), what it means and the codes it carries."""
    return {
        code: {
            "model": ErrorResponse,
            "description": f"{_WHY[code]}: {_listed(_CODES[code])}",
            "content": {"application/json": {}},
        }
        for code in codes
    }


# ---------------------------------------------------------------------- documents and jobs
class JobErrorOut(BaseModel):
    """Why a job failed: the code, message and details its error would have had in a response."""

    model_config = ConfigDict(from_attributes=True)

    code: str = Field(
        description="a code of the error envelope's, or `upload_lost`: the service stopped during the upload"
    )
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class JobProgressOut(BaseModel):
    stage: str
    strategy: str | None = None
    done: int
    total: int
    eta_s: float | None = None
    resumed: bool = False


class IngestResponse(BaseModel):
    doc_id: str
    space_id: str
    filename: str
    language: str
    chunks: int
    tokens: int
    duplicate: bool
    summary_pending: bool = False
    job_id: str | None = None
    version: int = Field(default=1, description="the document's version now (PUT /documents/{id} makes the next)")
    reused_chunks: int = Field(
        default=0, description="a new version: chunks it shares with the one it replaced, not embedded again"
    )
    replaced_kind: str | None = Field(
        default=None, description='a new version of another kind: the replaced one\'s (".pdf")'
    )


class VersionOut(BaseModel):
    n: int
    filename: str
    uploaded_at: float
    sha256: str = Field(description="of the uploaded bytes; empty for a first version uploaded before it was kept")
    size: int = Field(description="of the uploaded file, in bytes")


class DocumentInfo(BaseModel):
    doc_id: str
    space_id: str
    filename: str
    ext: str
    language: str
    chunks: int
    tokens: int
    chars: int
    size_bytes: int
    created_at: float
    summary_status: Literal["none", "pending", "running", "done", "failed"] = "none"
    summary_job_id: str | None = None
    summary_progress: JobProgressOut | None = None
    title: str | None = Field(default=None, description="set by PATCH; null: untitled (the filename stands for it)")
    tags: list[str] = Field(default_factory=list, description="set by PATCH; a scope's `tags` selects by them")
    version: int = 1
    versions: list[VersionOut] | None = Field(default=None, description="every version, oldest first (GET of one)")


class DocumentList(BaseModel):
    space_id: str
    documents: list[DocumentInfo]
    total: int = Field(description="documents the filters keep, across all pages")
    limit: int
    offset: int


class DocumentPatch(Request):
    """What to change; a field left out stays as it is."""

    tags: list[str] | None = Field(
        default=None, description=f"the document's tags, replacing the old ones (at most {MAX_TAGS}; [] clears)"
    )
    title: str | None = Field(default=None, description=f"1-{MAX_TITLE_CHARS} characters; null clears it")


class DeleteResponse(BaseModel):
    doc_id: str
    space_id: str
    deleted: bool


class UploadProgressOut(BaseModel):
    stage: Literal["queued", "reading", "ocr", "chunking", "embedding", "writing", "done"]
    done: int = Field(description="pages OCR'd or chunks embedded so far, in stages that count")
    total: int
    eta_s: float | None = None


class UploadResult(BaseModel):
    language: str
    chunks: int
    tokens: int
    duplicate: bool


class UploadJobResponse(BaseModel):
    """An upload that runs on as a job (202 from `/ingest`; `GET /jobs/{job_id}`)."""

    kind: Literal["upload"] = "upload"
    job_id: str
    doc_id: str
    space_id: str
    filename: str
    status: Literal["pending", "running", "done", "failed", "cancelled"]
    progress: UploadProgressOut
    result: UploadResult | None = Field(description="the indexed document, once `done`")
    error: JobErrorOut | None
    summary_job_id: str | None = Field(description="the summary job `generate_summary` asked for, once `done`")
    created_at: float
    updated_at: float


class JobResponse(BaseModel):
    kind: Literal["summary"] = "summary"
    job_id: str
    doc_id: str
    space_id: str
    language: str
    status: Literal["pending", "running", "done", "failed"]
    progress: JobProgressOut
    error: JobErrorOut | None
    retryable: bool
    attempts: int
    created_at: float
    updated_at: float


# ---------------------------------------------------------------------- search and answers
class SearchRequest(ScopeFields, Request):
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question or keywords; not blank")
    space_id: str = SpaceId
    top_k: StrictInt = Field(default=5, ge=1, le=100)


class SourceOut(BaseModel):
    doc_id: str
    filename: str
    score: float
    text: str
    chunk: int
    location: Location | None = Field(
        default=None,
        description='where the chunk sits: {"page": 3}, {"page": 3, "page_end": 4}, {"slide": 2, "title": "…"}, '
        '{"slide": 1, "slide_end": 3}, '
        '{"sheet": "Продажи", "rows": "2-4"}, {"chapter": "…"}, {"section": "A › B"}; null when unknown '
        "(documents ingested before locations were kept)",
        examples=[{"page": 3}],
    )
    match_location: Location | None = Field(
        default=None,
        description="where the chunk's sentence that matched the question best sits: its own slide, rows, chapter "
        'or page when the chunk spans several ({"slide": 3} in {"slide": 1, "slide_end": 3}); else `location`',
    )


class SearchResponse(BaseModel):
    sources: list[SourceOut]
    timing: dict[str, float]


class AskRequest(ScopeFields, Request):
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question; answered in its language")
    space_id: str = SpaceId
    mode: Literal["auto", "summarize", "direct"] = "auto"
    top_k: StrictInt = Field(default=5, ge=1, le=100)


class CitationOut(BaseModel):
    doc_id: str
    filename: str
    chunk: int
    quote: str = Field(description="the sentence (or two adjacent ones) of a source that supports the answer")
    start: int | None = Field(description="offset of `quote` in the document's text (`GET /documents/{id}/text`)")
    end: int | None
    score: float
    location: Location | None = Field(
        default=None, description="where the quote itself sits (its page, even when its chunk spans two); null: unknown"
    )
    version: int | None = Field(
        default=None,
        description="the document's version the quote was taken from: after a new version, "
        "`GET /documents/{id}/versions/{n}/text` still holds it (null: answered before versions were kept)",
    )


class SupportOut(BaseModel):
    text: str = Field(description="a sentence of the answer (or the quote the answer is)")
    citation: int | None = Field(description="the index in `citations` of the passage it rests on; null: none")
    score: float = Field(description="how close the sentence is to that passage (embedding similarity)")


class AskResponse(BaseModel):
    answer: str
    mode: str
    summarized: bool
    context_tokens: int
    language: str
    sources: list[SourceOut]
    timing: dict[str, float]
    usage: Usage
    citations: list[CitationOut] = Field(description="the sentences the answer rests on; none when not grounded")
    grounded: bool = Field(description="false: the documents do not hold an answer, and the answer says so")
    support: list[SupportOut] = Field(
        default_factory=list,
        description="each sentence of the answer with the citation it rests on: a sentence the passages do not "
        "bear out is never sent, and an answer left with none is the passage that answers, quoted",
    )

    @classmethod
    def of(cls, done: AskComplete) -> Self:
        """The answer as it goes out: every route that returns one renders it here (`TurnResponse`
        also reads the fields a turn's `complete` adds)."""
        return cls.model_validate(done, from_attributes=True)


# ---------------------------------------------------------------------- summaries
class SummarizeRequest(Request):
    doc_id: str = Field(min_length=1, max_length=128)
    space_id: str = SpaceId
    language: Language | None = Field(default=None, description="a supported language; default: the document's")
    force: StrictBool = Field(default=False, description="recompute even when a cached summary exists")


class SummarizeResponse(BaseModel):
    doc_id: str
    summary: str
    language: str
    cached: bool
    strategy: Literal["direct", "tree"]
    timing: dict[str, Any]
    usage: Usage
    sentences: list[SummarySentence] = Field(
        default_factory=list,
        description="the summary sentence by sentence, each with the passage of the document it rests on "
        "(`citations`: its quote, offsets in the document's text and place; none where no passage is close)",
    )


def stream_schema(events: dict[str, type[StreamEvent]], description: str) -> dict:
    """The OpenAPI response of a `text/event-stream` route: one schema per event name."""
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                "schema": {
                    "oneOf": [
                        {"title": name, **cls.model_json_schema(ref_template="#/components/schemas/{model}")}
                        for name, cls in events.items()
                    ]
                }
            }
        },
    }
