"""Request and response models at the HTTP edge; `/docs` is generated from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SPACE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SpaceId = Field(default="default", pattern=SPACE_PATTERN, description="1–64 of [A-Za-z0-9_-]")


class LLMCheck(BaseModel):
    ok: bool
    latency_ms: float | None = None
    model: str
    provider: str | None = None
    error: str | None = None
    restarts: int | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, Any]


class EndpointConfig(BaseModel):
    model_name: str
    provider: str
    base_url: str
    context_window: int
    context_window_source: str
    summarization_threshold: int
    summarization_max_output: int
    prompt_style: str
    max_concurrency: int
    timeout_s: float


class ModelConfigResponse(BaseModel):
    model_name: str
    provider: str
    context_window: int
    summarization_threshold: int
    summarization_max_output: int
    endpoint: str
    profile: str
    max_tokens: int
    routing: dict[str, str]
    endpoints: dict[str, EndpointConfig]


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
    summary_progress: dict[str, Any] | None = None


class DocumentList(BaseModel):
    space_id: str
    documents: list[DocumentInfo]


class DeleteResponse(BaseModel):
    doc_id: str
    space_id: str
    deleted: bool


class SearchRequest(BaseModel):
    q: str = Field(min_length=1, description="the question or keywords; must not be blank")
    space_id: str = SpaceId
    top_k: int = Field(default=5, ge=1, le=100)


class SourceOut(BaseModel):
    doc_id: str
    filename: str
    score: float
    text: str
    chunk: int


class SearchResponse(BaseModel):
    sources: list[SourceOut]
    timing: dict[str, float]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class SummarizeRequest(BaseModel):
    doc_id: str = Field(min_length=1, max_length=128)
    space_id: str = SpaceId
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$", description="default: the document's")
    force: bool = Field(default=False, description="recompute even when a cached summary exists")


class SummarizeResponse(BaseModel):
    doc_id: str
    summary: str
    language: str
    cached: bool
    strategy: Literal["direct", "tree"]
    timing: dict[str, Any]
    usage: dict[str, Any]


class AskRequest(BaseModel):
    q: str = Field(min_length=1, description="the question; the answer comes in its language")
    space_id: str = SpaceId
    mode: Literal["auto", "summarize", "direct"] = "auto"
    top_k: int = Field(default=5, ge=1, le=100)


class AskResponse(BaseModel):
    answer: str
    mode: str
    summarized: bool
    context_tokens: int
    language: str
    sources: list[SourceOut]
    timing: dict[str, Any]
    usage: dict[str, Any]


class JobResponse(BaseModel):
    job_id: str
    doc_id: str
    space_id: str
    language: str
    status: Literal["pending", "running", "done", "failed"]
    progress: dict[str, Any]
    error: dict[str, Any] | None
    retryable: bool
    attempts: int
    created_at: float
    updated_at: float
