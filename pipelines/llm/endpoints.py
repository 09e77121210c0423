"""The endpoint registry: every configured LLM server as the pipelines see it.

Each configured endpoint becomes an `Endpoint`: its backend (`backends.py`, which alone knows
what llama.cpp, vLLM and Ollama do differently), its LlamaIndex LLM, the model's facts (its
penalties against repetition among them), its token counter (`tokens.py`), a concurrency limit
that lets interactive calls overtake background ones, the calls in flight, and a failover partner.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from llama_index.core.llms import LLM

from docassist.pipelines.lanes import Lane
from docassist.pipelines.llm.backends import Backend, ClientOptions, backend_for, call_kwargs, token_counter
from docassist.pipelines.llm.inflight import Activity, InFlight
from docassist.pipelines.llm.scheduling import PrioritySemaphore, Throughput
from docassist.pipelines.llm.tokens import GgufVocabulary, TokenCounter
from docassist.pipelines.settings import EndpointSettings, ModelSpec, Settings

PROBE_TIMEOUT_S = 5.0
FAILOVER_PAUSE_S = 30.0


def auth_headers(api_key: str | None) -> dict[str, str]:
    """What every request to an LLM server carries when it has a key (vLLM `--api-key`, the
    embedded llama.cpp server's per-start key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def capturing_client(path: Path, timeout_s: float) -> httpx.AsyncClient:
    """An HTTP client that appends every request it sends — URL and JSON body, exactly as sent —
    to `path` (`LLM_CAPTURE_FILE`): what a benchmark replays, or a person reads to see a prompt."""

    async def record(request: httpx.Request) -> None:
        entry = {"url": str(request.url), "body": json.loads(request.content or b"null")}
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    return httpx.AsyncClient(timeout=timeout_s, event_hooks={"request": [record]})


@dataclass
class EndpointHealth:
    """One endpoint as `/health` reports it: `ok`, `busy` with our calls (alive, not asked),
    `stalled` (a call made no progress for longer than the stall timeout, or the server accepts
    connections but does not answer), or `down` (refuses, errors, or is restarting)."""

    state: Literal["ok", "busy", "stalled", "down"]
    model: str
    provider: str
    latency_ms: float | None = None
    error: str | None = None
    activity: Activity | None = None
    failover_to: str | None = None
    restarts: int | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "busy")


@dataclass
class Endpoint:
    """One LLM server as the pipelines see it."""

    settings: EndpointSettings
    spec: ModelSpec
    base_url: str
    backend: Backend
    llm: LLM
    tokens: TokenCounter
    limiter: PrioritySemaphore
    throughput: Throughput
    api_key: str | None = None
    context_window_source: str = "config/llm_models.json"
    fallback: Endpoint | None = None
    unavailable_until: float = 0.0
    inflight: InFlight = field(default_factory=InFlight)
    _discovered: bool = False
    _probe: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def provider(self) -> str:
        return self.settings.provider

    @property
    def style(self) -> Literal["chat", "completion"]:
        return self.spec.prompt_style

    @property
    def root_url(self) -> str:
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def llm_for(self, max_tokens: int, *, all_room: bool = False, strong: bool = False) -> tuple[LLM, dict]:
        """The LLM and per-call kwargs: generation capped at `max_tokens`, the backend's stream options
        (`all_room`: the retry of an empty reasoning answer), and the model's penalties against
        repetition (`strong`: the retry of a call that looped)."""
        guard = self.spec.repetition
        llm, cap = self.backend.capped(self.llm, max_tokens)
        llm, sampling = self.backend.sampling(llm, guard.retry if strong else guard.call)
        return llm, call_kwargs(cap, self.backend.stream_options(self.spec, self.settings, all_room), sampling)

    def mark_unavailable(self, seconds: float = FAILOVER_PAUSE_S) -> None:
        self.unavailable_until = time.monotonic() + seconds

    @property
    def presumed_down(self) -> bool:
        return time.monotonic() < self.unavailable_until

    async def discover(self) -> None:
        """Take the context window the server reports (vLLM's `max_model_len` in /v1/models)
        over config/llm_models.json; an explicit LLM_CONTEXT_WINDOW still wins."""
        if (
            self._discovered
            or not self.backend.reports_context_window
            or self.context_window_source == "LLM_CONTEXT_WINDOW"
        ):
            return
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, headers=auth_headers(self.api_key)) as client:
                data = (await client.get(f"{self.base_url.rstrip('/')}/models")).json().get("data", [])
        except (httpx.HTTPError, ValueError):
            return
        self._discovered = True
        for entry in data:
            if entry.get("id") == self.settings.model and entry.get("max_model_len"):
                self.spec = self.spec.model_copy(update={"context_window": int(entry["max_model_len"])})
                self.context_window_source = f"server: {self.base_url.rstrip('/')}/models (max_model_len)"

    async def health(self) -> EndpointHealth:
        """Never raises. A stalled call makes the endpoint `stalled` without asking it; a server
        that serves one request at a time (llama.cpp) running one of our calls is `busy` and not
        asked either (the question would wait for the whole generation)."""
        base = {
            "model": self.settings.model,
            "provider": self.provider,
            "failover_to": self.fallback.name if self.fallback else None,
        }
        activity = self.inflight.activity()
        if activity and activity.stalled(self.settings.stall_timeout_s):
            return EndpointHealth(
                "stalled",
                activity=activity,
                error=f"a call has made no progress for {activity.since_progress_s:.0f}s "
                f"(stall timeout {self.settings.stall_timeout_s:.0f}s)",
                **base,
            )
        one_at_a_time = self.backend.one_request_at_a_time
        if activity and one_at_a_time:
            return EndpointHealth("busy", activity=activity, **base)
        url = self.backend.health_url(self.base_url, self.root_url)
        probe_s = min(PROBE_TIMEOUT_S, self.settings.stall_timeout_s)
        started = time.perf_counter()
        try:
            response = await self._prober().get(url, timeout=probe_s)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return EndpointHealth("down", error=f"{type(exc).__name__}: {exc or 'no answer'} ({url})", **base)
        except httpx.TimeoutException:
            if one_at_a_time and self.inflight.abandoned_within(self.settings.stall_timeout_s):
                # still reading the prompt of a call whose client left (inflight.py): busy, not stalled
                return EndpointHealth("busy", error="finishing a call whose client left", **base)
            return EndpointHealth(
                "stalled", error=f"accepts connections but did not answer in {probe_s:g}s ({url})", **base
            )
        except httpx.HTTPError as exc:
            return EndpointHealth("down", error=f"{type(exc).__name__}: {exc} ({url})", **base)
        latency = round((time.perf_counter() - started) * 1000, 1)
        if response.status_code != 200:
            return EndpointHealth("down", latency_ms=latency, error=f"HTTP {response.status_code} from {url}", **base)
        missing = self.backend.missing_model(_json(response), self.settings.model, self.root_url)
        if missing:
            return EndpointHealth("down", latency_ms=latency, error=missing, **base)
        await self.discover()
        self.unavailable_until = 0.0
        return EndpointHealth("busy" if activity else "ok", latency_ms=latency, activity=activity, **base)

    def _prober(self) -> httpx.AsyncClient:
        """The health probes' client, made once: a new client builds a TLS context (~10 ms of CPU), which
        a busy `/health` paid on every refresh. No keep-alive: a connection the server closed while idle
        (uvicorn closes them after 5 s, the refresh interval) would read as the server being down."""
        if self._probe is None:
            self._probe = httpx.AsyncClient(
                timeout=PROBE_TIMEOUT_S,
                headers=auth_headers(self.api_key),
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._probe

    async def close(self) -> None:
        await self.tokens.close()
        if self._probe is not None:
            await self._probe.aclose()


def _json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class ManagedServer:
    """An LLM server docassist runs itself: where it listens, its GGUF, the key it was given, and
    the lane its GGUF vocabulary counts long texts on."""

    base_url: str
    gguf: Path
    api_key: str
    count_lane: Lane


def build_endpoints(settings: Settings, managed: dict[str, ManagedServer]) -> dict[str, Endpoint]:
    """One `Endpoint` per configured endpoint; `managed` names the endpoints whose server
    docassist runs."""
    endpoints: dict[str, Endpoint] = {}
    for name, ep in settings.endpoints.items():
        spec = settings.model_spec(ep.model)
        assert spec is not None  # load_settings checked every model
        own = managed.get(name)
        base_url = own.base_url if own else ep.base_url or ""
        vocabulary, api_key = (GgufVocabulary(own.gguf, own.count_lane), own.api_key) if own else (None, ep.api_key)
        root = base_url.rstrip("/").removesuffix("/v1")
        backend = backend_for(ep.provider)
        capture = settings.llm_capture_file
        options = ClientOptions(
            base_url=base_url,
            temperature=settings.llm_temperature,
            timeout_s=ep.timeout_s,
            api_key=api_key,
            http_client=capturing_client(capture, ep.timeout_s) if capture else None,
        )
        endpoints[name] = Endpoint(
            settings=ep,
            spec=spec,
            base_url=base_url,
            backend=backend,
            api_key=api_key,
            llm=backend.build_llm(ep, spec, options),
            tokens=token_counter(backend, ep, root, vocabulary, auth_headers(api_key)),
            limiter=PrioritySemaphore(ep.max_concurrency),
            throughput=Throughput.seeded(backend.seed_rates),
            context_window_source="LLM_CONTEXT_WINDOW"
            if settings.context_window_override
            else "config/llm_models.json",
        )
    for name, other in settings.profile.failover.items():
        endpoints[name].fallback = endpoints[other]
    return endpoints
