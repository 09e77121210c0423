"""The endpoint registry: the one place that knows which LLM backend runs.

Each configured endpoint becomes an `Endpoint`: a LlamaIndex LLM (`OpenAILike` for vLLM
and llama.cpp, `Ollama` for Ollama with `context_window` and `num_ctx` explicit), the
model's facts, a concurrency limit, and the server's own tokenizer where it has one
(vLLM `POST /tokenize`, llama.cpp `POST /extras/tokenize/count`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import httpx
from llama_index.core.llms import LLM

from docassist.pipelines.llm.scheduling import PrioritySemaphore, Throughput
from docassist.pipelines.settings import EndpointSettings, ModelSpec, Settings

_TOKEN_CACHE_SIZE = 4096
CHARS_PER_TOKEN_ESTIMATE = 2.0  # conservative: real tokenizers give 2.5–4.5 chars/token
CHARS_PER_TOKEN_GUESS = 3.5  # a typical figure, before the server has counted anything


def build_llm(ep: EndpointSettings, spec: ModelSpec, base_url: str) -> LLM:
    """The LlamaIndex LLM for one endpoint. No instance-level max_tokens: budgets are per call."""
    if ep.provider == "Ollama":
        from llama_index.llms.ollama import Ollama

        return Ollama(
            model=ep.model,
            base_url=base_url,
            request_timeout=ep.timeout_s,
            context_window=spec.context_window,
            additional_kwargs={"num_ctx": spec.context_window},
            thinking=False,
        )
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        model=ep.model,
        api_base=base_url,
        api_key="docassist",
        is_chat_model=spec.prompt_style == "chat",
        context_window=spec.context_window,
        timeout=ep.timeout_s,
        max_retries=0,
        temperature=0.2,
    )


@dataclass
class Endpoint:
    """One LLM server as the pipelines see it."""

    settings: EndpointSettings
    spec: ModelSpec
    base_url: str
    llm: LLM
    semaphore: PrioritySemaphore
    throughput: Throughput
    context_window_source: str = "config/llm_models.json"
    fallback: Endpoint | None = None
    unavailable_until: float = 0.0
    chars_per_token: float = CHARS_PER_TOKEN_GUESS  # learned from the server's counts; for guesses only
    _token_cache: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _tokenizer_ok: bool | None = None
    _discovered: bool = False

    def llm_for(self, max_tokens: int) -> tuple[LLM, dict]:
        """The LLM and per-call kwargs that cap generation at `max_tokens`. Ollama takes the cap
        as `num_predict` in its options, which llama-index builds from the instance only."""
        if self.provider == "Ollama":
            extra = {**self.llm.additional_kwargs, "num_predict": max_tokens}  # type: ignore[attr-defined]
            return self.llm.model_copy(update={"additional_kwargs": extra}), {}
        return self.llm, {"max_tokens": max_tokens}

    def mark_unavailable(self, seconds: float = 30.0) -> None:
        self.unavailable_until = time.monotonic() + seconds

    @property
    def presumed_down(self) -> bool:
        return time.monotonic() < self.unavailable_until

    async def discover(self) -> None:
        """Take the context window the server reports (vLLM's `max_model_len` in /v1/models)
        over config/llm_models.json; an explicit LLM_CONTEXT_WINDOW still wins."""
        if self._discovered or self.provider != "vLLM" or self.context_window_source == "LLM_CONTEXT_WINDOW":
            return
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                data = (await client.get(f"{self.base_url.rstrip('/')}/models")).json().get("data", [])
        except (httpx.HTTPError, ValueError):
            return
        self._discovered = True
        for entry in data:
            if entry.get("id") == self.settings.model and entry.get("max_model_len"):
                self.spec = self.spec.model_copy(update={"context_window": int(entry["max_model_len"])})
                self.context_window_source = f"server: {self.base_url.rstrip('/')}/models (max_model_len)"

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def provider(self) -> str:
        return self.settings.provider

    @property
    def root_url(self) -> str:
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def estimate_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE) + 1

    def guess_tokens(self, chars: int) -> int:
        """A best guess (not a safe bound) at the tokens of `chars` characters, asking no one."""
        return math.ceil(chars / self.chars_per_token)

    def known_tokens(self, text: str) -> int:
        """The count from the cache when the server counted this text before, else a best guess."""
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
        return self._token_cache.get(key) or self.guess_tokens(len(text))

    async def count_tokens(self, text: str) -> int:
        """Tokens of `text` by the server's own tokenizer, cached; a conservative estimate otherwise."""
        key = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
        if key in self._token_cache:
            self._token_cache.move_to_end(key)
            return self._token_cache[key]
        count = await self._server_count(text) if self._tokenizer_ok is not False else None
        if count is None:
            return self.estimate_tokens(text)
        self._token_cache[key] = count
        if len(text) >= 200 and count:
            self.chars_per_token += 0.3 * (len(text) / count - self.chars_per_token)
        if len(self._token_cache) > _TOKEN_CACHE_SIZE:
            self._token_cache.popitem(last=False)
        return count

    async def _server_count(self, text: str) -> int | None:
        if self.provider == "llama.cpp":
            url, body = f"{self.root_url}/extras/tokenize/count", {"input": text}
        elif self.provider == "vLLM":
            url, body = f"{self.root_url}/tokenize", {"model": self.settings.model, "prompt": text}
        else:
            self._tokenizer_ok = False
            return None
        try:
            async with httpx.AsyncClient(timeout=min(30.0, self.settings.timeout_s)) as client:
                response = await client.post(url, json=body)
            if response.status_code == 404:
                self._tokenizer_ok = False
                return None
            response.raise_for_status()
            self._tokenizer_ok = True
            return int(response.json()["count"])
        except (httpx.HTTPError, KeyError, ValueError):
            return None

    async def health(self) -> dict:
        """Ask the server what it serves; never raises. A llama.cpp server that is running one of our
        calls is not asked: it serves one request at a time, so the question would wait for the whole
        generation (seconds to minutes) and time out; the call in progress shows it is alive (a dead
        server fails its calls at once, and the supervisor restarts it)."""
        if self.provider == "llama.cpp" and self.semaphore.in_use:
            return {
                "ok": True,
                "latency_ms": 0.0,
                "model": self.settings.model,
                "provider": self.provider,
                "busy": self.semaphore.in_use,
            }
        started = time.perf_counter()
        url = f"{self.root_url}/api/tags" if self.provider == "Ollama" else f"{self.base_url.rstrip('/')}/models"
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(url)
            latency = round((time.perf_counter() - started) * 1000, 1)
            if response.status_code != 200:
                return {
                    "ok": False,
                    "latency_ms": latency,
                    "model": self.settings.model,
                    "error": f"HTTP {response.status_code} from {url}",
                }
            if self.provider == "Ollama" and not _ollama_has(response.json(), self.settings.model):
                return {
                    "ok": False,
                    "latency_ms": latency,
                    "model": self.settings.model,
                    "error": f"model {self.settings.model!r} is not pulled on {self.root_url} yet "
                    f"(still pulling, or run: ollama pull {self.settings.model})",
                }
            await self.discover()
            self.unavailable_until = 0.0
            return {
                "ok": True,
                "latency_ms": latency,
                "model": self.settings.model,
                "provider": self.provider,
                **({"failover_to": self.fallback.name} if self.fallback else {}),
            }
        except (httpx.HTTPError, ValueError) as exc:
            return {
                "ok": False,
                "latency_ms": None,
                "model": self.settings.model,
                "error": f"{type(exc).__name__}: {exc or 'no answer'} ({url})",
            }


def _ollama_has(tags: dict, model: str) -> bool:
    names = {m.get("name") for m in tags.get("models", [])} | {m.get("model") for m in tags.get("models", [])}
    return model in names or f"{model}:latest" in names


def build_endpoints(settings: Settings, managed_urls: dict[str, str]) -> dict[str, Endpoint]:
    """One `Endpoint` per configured endpoint; managed ones take the URL of the server we started."""
    endpoints: dict[str, Endpoint] = {}
    for name, ep in settings.endpoints.items():
        spec = settings.model_spec(ep.model)
        assert spec is not None  # load_settings checked every model
        base_url = ep.base_url or managed_urls[name]
        endpoints[name] = Endpoint(
            settings=ep,
            spec=spec,
            base_url=base_url,
            llm=build_llm(ep, spec, base_url),
            semaphore=PrioritySemaphore(ep.max_concurrency),
            throughput=Throughput.for_provider(ep.provider),
            context_window_source="LLM_CONTEXT_WINDOW"
            if settings.context_window_override
            else "config/llm_models.json",
        )
    for name, other in settings.profile.failover.items():
        endpoints[name].fallback = endpoints[other]
    return endpoints
