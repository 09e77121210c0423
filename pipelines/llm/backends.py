"""What each LLM backend is: the one place that tells llama.cpp, vLLM, Ollama and any other
OpenAI-compatible server apart.

A `Backend` owns everything that differs between them — the LlamaIndex client it takes, where its
health is asked and how the answer is read, which tokenizer it offers, what throughput to assume
before any is measured, the stream options, generation cap and repetition penalties of a call, what
its errors mean, and whether it serves one request at a time. `backend_for` picks one per configured
`provider`; nothing else in docassist compares provider names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from llama_index.core.llms import LLM

from docassist.pipelines.errors import LLMUnavailable
from docassist.pipelines.llm.tokens import GgufVocabulary, ServerTokenizer, TokenCounter, UpperBound
from docassist.pipelines.sampling import Sampling
from docassist.pipelines.settings import EndpointSettings, ModelSpec, Provider


@dataclass(frozen=True)
class ClientOptions:
    """What every client is built with, whatever the backend."""

    base_url: str
    temperature: float
    timeout_s: float
    api_key: str | None
    http_client: Any = None  # an httpx.AsyncClient that records requests (LLM_CAPTURE_FILE), or None


class Backend:
    """An OpenAI-compatible server (`/v1/chat/completions`, `/v1/completions`, `/v1/models`)
    through LlamaIndex's `OpenAILike`; the other backends change what differs."""

    name: ClassVar[str] = "OpenAI-compatible"
    seed_rates: ClassVar[tuple[float, float]] = (1000.0, 50.0)  # prompt, generated tokens/s before any is measured
    one_request_at_a_time: ClassVar[bool] = False  # asking its health during a call would wait for the call
    reports_context_window: ClassVar[bool] = False  # /v1/models says the model's max_model_len

    def build_llm(self, ep: EndpointSettings, spec: ModelSpec, options: ClientOptions) -> LLM:
        """The LlamaIndex LLM. No instance-level max_tokens: budgets are per call."""
        from llama_index.llms.openai_like import OpenAILike

        return OpenAILike(
            model=ep.model,
            api_base=options.base_url,
            api_key=options.api_key or "docassist",
            is_chat_model=spec.prompt_style == "chat",
            context_window=spec.context_window,
            timeout=options.timeout_s,
            max_retries=0,
            temperature=options.temperature,
            async_http_client=options.http_client,
        )

    def capped(self, llm: LLM, max_tokens: int) -> tuple[LLM, dict[str, Any]]:
        """The LLM and per-call kwargs that cap generation at `max_tokens`."""
        return llm, {"max_tokens": max_tokens}

    def stream_options(self, spec: ModelSpec, ep: EndpointSettings, all_room: bool) -> dict[str, Any]:
        """Extra kwargs for a streamed call (`all_room`: the retry of an empty reasoning answer)."""
        return {}

    def sampling(self, llm: LLM, penalties: Sampling) -> tuple[LLM, dict[str, Any]]:
        """The LLM and per-call kwargs that send `penalties` as this server names them; OpenAI's API
        has frequency_penalty only."""
        return llm, _given(penalties, frequency_penalty="frequency_penalty")

    def health_url(self, base_url: str, root_url: str) -> str:
        return f"{base_url.rstrip('/')}/models"

    def missing_model(self, listing: dict[str, Any], model: str, root_url: str) -> str | None:
        """Why the health listing shows the server cannot serve `model` yet; None when it can."""
        return None

    def token_counter(self, ep: EndpointSettings, root_url: str, headers: dict[str, str]) -> TokenCounter:
        """The tokenizer the server offers, else an upper bound."""
        return UpperBound()

    def explain(self, ep: EndpointSettings, status: int | None, text: str) -> LLMUnavailable | None:
        """A backend-specific meaning of a failed call (`text` lower-cased), or None."""
        return None


class LlamaCpp(Backend):
    """llama.cpp's server: one request at a time on the embedded default; `/extras/tokenize/count`."""

    name = "llama.cpp"
    seed_rates = (240.0, 65.0)
    one_request_at_a_time = True

    def sampling(self, llm: LLM, penalties: Sampling) -> tuple[LLM, dict[str, Any]]:
        """llama-server's fields; the embedded llama-cpp-python server takes repeat_penalty and
        frequency_penalty, and leaves the ones it lacks (DRY, repeat_last_n) unread."""
        names = {k: k for k in ("repeat_penalty", "repeat_last_n", "dry_multiplier", "dry_base", "dry_allowed_length")}
        extra = _given(penalties, **names)
        return llm, {**_given(penalties, frequency_penalty="frequency_penalty"), **_body(extra)}

    def token_counter(self, ep: EndpointSettings, root_url: str, headers: dict[str, str]) -> TokenCounter:
        return ServerTokenizer(
            self.name,
            root_url,
            ep.model,
            ep.timeout_s,
            headers,
            text_path="/extras/tokenize/count",
            text_body=lambda _model, text: {"input": text},
        )


class VLLM(Backend):
    """vLLM's OpenAI server: usage in the stream, reasoning effort for reasoning models, `POST
    /tokenize` with the chat template, and the model's window in `/v1/models`."""

    name = "vLLM"
    seed_rates = (4000.0, 150.0)
    reports_context_window = True

    def stream_options(self, spec: ModelSpec, ep: EndpointSettings, all_room: bool) -> dict[str, Any]:
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}}
        if spec.reasoning:
            extra["extra_body"] = {"reasoning_effort": "low" if all_room else ep.reasoning_effort}
        return extra

    def sampling(self, llm: LLM, penalties: Sampling) -> tuple[LLM, dict[str, Any]]:
        """vLLM's repetition_penalty (over the prompt's tokens and the generated ones) in the body."""
        extra = _given(penalties, repeat_penalty="repetition_penalty")
        return llm, {**_given(penalties, frequency_penalty="frequency_penalty"), **_body(extra)}

    def token_counter(self, ep: EndpointSettings, root_url: str, headers: dict[str, str]) -> TokenCounter:
        return ServerTokenizer(
            self.name,
            root_url,
            ep.model,
            ep.timeout_s,
            headers,
            text_path="/tokenize",
            text_body=lambda model, text: {"model": model, "prompt": text},
            messages_form=True,
        )


class Ollama(Backend):
    """Ollama's native API through LlamaIndex's `Ollama`, with the context window explicit
    (`num_ctx`); its generation cap is `num_predict` in the options; health from `/api/tags`,
    which lists the models pulled so far."""

    name = "Ollama"
    seed_rates = (400.0, 20.0)

    def build_llm(self, ep: EndpointSettings, spec: ModelSpec, options: ClientOptions) -> LLM:
        from llama_index.llms.ollama import Ollama as OllamaLLM

        return OllamaLLM(
            model=ep.model,
            base_url=options.base_url,
            request_timeout=options.timeout_s,
            context_window=spec.context_window,
            additional_kwargs={"num_ctx": spec.context_window},
            temperature=options.temperature,
            thinking=False,
        )

    def capped(self, llm: LLM, max_tokens: int) -> tuple[LLM, dict[str, Any]]:
        # llama-index builds Ollama's options from the instance only
        extra = {**llm.additional_kwargs, "num_predict": max_tokens}  # type: ignore[attr-defined]
        return llm.model_copy(update={"additional_kwargs": extra}), {}

    def sampling(self, llm: LLM, penalties: Sampling) -> tuple[LLM, dict[str, Any]]:
        """Ollama's options, which llama-index reads from the instance as it does num_predict."""
        names = {k: k for k in ("repeat_penalty", "repeat_last_n", "frequency_penalty")}
        given = _given(penalties, **names)
        if not given:
            return llm, {}
        extra = {**llm.additional_kwargs, **given}  # type: ignore[attr-defined]
        return llm.model_copy(update={"additional_kwargs": extra}), {}

    def health_url(self, base_url: str, root_url: str) -> str:
        return f"{root_url}/api/tags"

    def missing_model(self, listing: dict[str, Any], model: str, root_url: str) -> str | None:
        models = listing.get("models", [])
        names = {m.get("name") for m in models} | {m.get("model") for m in models}
        if model in names or f"{model}:latest" in names:
            return None
        return f"model {model!r} is not pulled on {root_url} yet (still pulling, or run: ollama pull {model})"

    def explain(self, ep: EndpointSettings, status: int | None, text: str) -> LLMUnavailable | None:
        if status == 404 and "not found" in text:
            return LLMUnavailable(
                f"LLM endpoint '{ep.name}' (Ollama) does not have model {ep.model!r} yet: it is still pulling, "
                f"or run `ollama pull {ep.model}`",
                endpoint=ep.name,
            )
        return None


def backend_for(provider: Provider) -> Backend:
    """The backend of a configured `provider`."""
    match provider:
        case "llama.cpp":
            return LlamaCpp()
        case "vLLM":
            return VLLM()
        case "Ollama":
            return Ollama()
        case "OpenAI-compatible":
            return Backend()


def token_counter(
    backend: Backend, ep: EndpointSettings, root_url: str, vocabulary: GgufVocabulary | None, headers: dict[str, str]
) -> TokenCounter:
    """The best tokenizer an endpoint has: the GGUF's vocabulary when docassist runs the model,
    else what its backend offers."""
    return vocabulary if vocabulary is not None else backend.token_counter(ep, root_url, headers)


def call_kwargs(*parts: dict[str, Any]) -> dict[str, Any]:
    """Per-call kwargs joined; `extra_body` (fields the OpenAI client has no argument for) merged."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = {**out.get(key, {}), **value} if key == "extra_body" else value
    return out


def _given(penalties: Sampling, **names: str) -> dict[str, Any]:
    """The penalties set among `names` (ours → the server's)."""
    given = penalties.given()
    return {theirs: given[ours] for ours, theirs in names.items() if ours in given}


def _body(fields: dict[str, Any]) -> dict[str, Any]:
    return {"extra_body": fields} if fields else {}
