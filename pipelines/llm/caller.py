"""The one LLM call path every pipeline uses.

It counts the prompt with the endpoint's tokenizer, sizes `max_tokens` to what the context
window leaves (SPEC.md section 4), never sends a prompt that cannot fit, waits its turn on
the endpoint's concurrency limit, logs request and response as SPEC.md section 7 shows, and
turns transport failures into `LLMUnavailable` and context-length refusals into
`ContextOverflow` (callers re-split).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from llama_index.core.llms import ChatMessage, MessageRole

from docassist.pipelines.errors import ContextOverflow, LLMUnavailable
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.logs import clock, event

CHAT_OVERHEAD_TOKENS = 16  # role markers and template tokens around chat messages


@dataclass(frozen=True)
class Budget:
    context_window: int
    prompt_tokens: int
    safety_margin: int
    available: int
    max_tokens: int


def plan_budget(
    context_window: int, prompt_tokens: int, configured_max: int, safety_margin: int, min_useful_output: int
) -> Budget:
    """`max_tokens = min(configured, context_window - prompt_tokens - safety_margin)`, or ContextOverflow."""
    available = context_window - prompt_tokens - safety_margin
    budget = Budget(context_window, prompt_tokens, safety_margin, available, min(configured_max, available))
    if available < min_useful_output:
        raise ContextOverflow(
            f"prompt of {prompt_tokens} tokens leaves {available} of {context_window} for the answer; split the input",
            **budget.__dict__,
        )
    return budget


@dataclass
class Prompt:
    """What to send: `user` text plus an optional `system` instruction. Completion-style
    (base) models get them joined into one text; chat models get two messages."""

    user: str
    system: str | None = None
    primer: str = ""  # completion form: the answer's first words, already at the end of `user`
    stop: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        return f"{self.system}\n\n{self.user}" if self.system else self.user

    def as_messages(self) -> list[ChatMessage]:
        msgs = [ChatMessage(role=MessageRole.SYSTEM, content=self.system)] if self.system else []
        return [*msgs, ChatMessage(role=MessageRole.USER, content=self.user)]


@dataclass
class Completion:
    text: str
    endpoint: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str | None = None
    budget: Budget | None = None
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return round(self.completion_tokens / self.seconds, 1) if self.seconds > 0 else 0.0


@dataclass
class LLMCaller:
    """Bound to the service's limits (`LLM_MAX_TOKENS`, safety margin, minimum useful output)."""

    max_tokens: int
    safety_margin: int = 64
    min_useful_output: int = 64

    async def prompt_tokens(self, endpoint: Endpoint, prompt: Prompt) -> int:
        if endpoint.spec.prompt_style == "chat":
            counts = await asyncio.gather(*(endpoint.count_tokens(m.content or "") for m in prompt.as_messages()))
            return sum(counts) + CHAT_OVERHEAD_TOKENS
        return await endpoint.count_tokens(prompt.as_text()) + 1

    def guess_prompt_tokens(self, endpoint: Endpoint, prompt: Prompt) -> int:
        """`prompt_tokens` without asking the server: exact for texts it counted before, else a guess."""
        if endpoint.spec.prompt_style == "chat":
            return sum(endpoint.known_tokens(m.content or "") for m in prompt.as_messages()) + CHAT_OVERHEAD_TOKENS
        return endpoint.known_tokens(prompt.as_text()) + 1

    async def budget(self, endpoint: Endpoint, prompt: Prompt, max_output: int | None = None) -> Budget:
        tokens = await self.prompt_tokens(endpoint, prompt)
        configured = min(self.max_tokens, max_output or self.max_tokens)
        budget = plan_budget(
            endpoint.spec.context_window, tokens, configured, self.safety_margin, self.min_useful_output
        )
        event(
            "[DYNAMIC MAX_TOKENS CALCULATION]",
            "📐 Formula: available = context_window - prompt_tokens - safety_margin",
            f"  context_window  = {budget.context_window:,}",
            f"  prompt_tokens   = {budget.prompt_tokens:,}",
            f"  safety_margin   = {budget.safety_margin:,}",
            f"  available       = {budget.available:,}",
            f"  max_tokens      = min({configured:,}, {budget.available:,}) = {budget.max_tokens:,}",
            **budget.__dict__,
        )
        return budget

    def _log_request(self, endpoint: Endpoint, prompt: Prompt, budget: Budget, purpose: str) -> None:
        chars = len(prompt.as_text())
        event(
            f"[LLM REQUEST → {endpoint.provider}] Model: {endpoint.settings.model}",
            f"📝 INPUT ({purpose}, endpoint {endpoint.name}):",
            f"  - Prompt: {chars:,} chars, ~{budget.prompt_tokens:,} tokens",
            f"  - Max output tokens: {budget.max_tokens:,}",
            f"🚀 Sending request to {endpoint.provider}...",
            f"  ⏰ LLM send time: {clock()}",
            endpoint=endpoint.name,
            model=endpoint.settings.model,
            purpose=purpose,
            prompt_chars=chars,
            prompt_tokens=budget.prompt_tokens,
            max_tokens=budget.max_tokens,
        )

    def _log_response(self, endpoint: Endpoint, result: Completion) -> None:
        event(
            f"[LLM RESPONSE ← {endpoint.provider}]",
            f"✅ Response received from {endpoint.provider}!  ⏰ LLM receive time: {clock()}",
            "📤 OUTPUT:",
            f"  - Response: {len(result.text):,} chars, ~{result.completion_tokens:,} tokens",
            f"  - Generation time: {result.seconds:.2f}s",
            f"  - Speed: ~{result.tokens_per_second} tokens/sec",
            f"  - Finish reason: {result.finish_reason}",
            endpoint=endpoint.name,
            response_chars=len(result.text),
            completion_tokens=result.completion_tokens,
            seconds=round(result.seconds, 3),
            tokens_per_second=result.tokens_per_second,
            finish_reason=result.finish_reason,
        )

    def _unavailable(self, endpoint: Endpoint, exc: BaseException) -> LLMUnavailable:
        reason = "timed out" if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__ else "is unavailable"
        return LLMUnavailable(
            f"LLM endpoint '{endpoint.name}' ({endpoint.provider}, {endpoint.base_url}) {reason}: "
            f"{type(exc).__name__}: {exc}".rstrip(": "),
            endpoint=endpoint.name,
        )

    def _classify(self, endpoint: Endpoint, exc: Exception) -> Exception:
        text = str(exc).lower()
        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
        if endpoint.provider == "Ollama" and status == 404 and "not found" in text:
            return LLMUnavailable(
                f"LLM endpoint '{endpoint.name}' (Ollama, {endpoint.base_url}) does not have model "
                f"{endpoint.settings.model!r} yet: it is still pulling, or run `ollama pull {endpoint.settings.model}`",
                endpoint=endpoint.name,
            )
        if status == 400 and ("context" in text or "maximum" in text or "too long" in text):
            return ContextOverflow(f"{endpoint.name}: {exc}", endpoint=endpoint.name)
        if status is not None and 400 <= status < 500 and status not in (404, 408, 429):
            return exc
        return self._unavailable(endpoint, exc)

    def _route(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint to try first: a fallback when the primary failed moments ago."""
        fb = endpoint.fallback
        if endpoint.presumed_down and fb is not None and not fb.presumed_down:
            event(
                f"[FAILOVER] '{endpoint.name}' failed recently → '{fb.name}'",
                f"skipping {endpoint.base_url} for now",
                endpoint=endpoint.name,
                to=fb.name,
                level=30,
            )
            return fb
        return endpoint

    def _failover(self, endpoint: Endpoint, exc: LLMUnavailable) -> Endpoint | None:
        endpoint.mark_unavailable()
        fb = endpoint.fallback
        if fb is None or fb.presumed_down:
            return None
        event(
            f"[FAILOVER] '{endpoint.name}' is unavailable → '{fb.name}'",
            exc.message,
            endpoint=endpoint.name,
            to=fb.name,
            level=30,
        )
        return fb

    async def complete(
        self, endpoint: Endpoint, prompt: Prompt, *, purpose: str, max_output: int | None = None
    ) -> Completion:
        """One budgeted, logged, concurrency-limited call; returns the whole text. An endpoint
        that is down hands the call to its configured fallback."""
        first = self._route(endpoint)
        try:
            return await self._complete_on(first, prompt, purpose, max_output)
        except LLMUnavailable as exc:
            fb = self._failover(first, exc)
            if fb is None:
                raise
            try:
                return await self._complete_on(fb, prompt, purpose, max_output)
            except LLMUnavailable as again:
                fb.mark_unavailable()
                raise _both_down(exc, again) from again

    async def _complete_on(
        self, endpoint: Endpoint, prompt: Prompt, purpose: str, max_output: int | None, room: bool = False
    ) -> Completion:
        budget = await self.budget(endpoint, prompt, max_output)
        if room:  # a reasoning model spent its budget thinking: give it everything the window leaves
            budget = Budget(
                budget.context_window, budget.prompt_tokens, budget.safety_margin, budget.available, budget.available
            )
        llm, cap = endpoint.llm_for(budget.max_tokens)
        extra = {"extra_body": {"reasoning_effort": "low"}} if room and endpoint.provider == "vLLM" else {}
        async with endpoint.semaphore:
            self._log_request(endpoint, prompt, budget, purpose)
            started = time.perf_counter()
            try:
                async with asyncio.timeout(endpoint.settings.timeout_s):
                    if endpoint.spec.prompt_style == "chat":
                        response = await llm.achat(prompt.as_messages(), **cap, **extra)
                        text, raw = response.message.content or "", response.raw
                    else:
                        response = await llm.acomplete(prompt.as_text(), formatted=True, **cap, **_stop(prompt))
                        text, raw = _joined(prompt.primer, response.text), response.raw
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except TimeoutError as exc:
                raise self._unavailable(endpoint, exc) from exc
            except Exception as exc:
                raise self._classify(endpoint, exc) from exc
            seconds = time.perf_counter() - started
        usage = _usage(raw)
        result = Completion(
            text=strip_reasoning(text).strip(),
            endpoint=endpoint.name,
            model=endpoint.settings.model,
            prompt_tokens=usage.get("prompt_tokens") or budget.prompt_tokens,
            completion_tokens=usage.get("completion_tokens") or await endpoint.count_tokens(text),
            seconds=seconds,
            finish_reason=_finish_reason(raw),
            budget=budget,
        )
        endpoint.throughput.observe(result.prompt_tokens, result.completion_tokens, seconds)
        self._log_response(endpoint, result)
        if not result.text and result.finish_reason == "length" and endpoint.spec.reasoning and not room:
            event(
                "[REASONING] Empty answer: the reasoning used the whole budget",
                f"retrying once with all {budget.available:,} tokens the window leaves and low reasoning effort",
                endpoint=endpoint.name,
                max_tokens=budget.max_tokens,
                level=30,
            )
            return await self._complete_on(endpoint, prompt, purpose, max_output, room=True)
        return result

    async def stream(
        self, endpoint: Endpoint, prompt: Prompt, *, purpose: str, max_output: int | None = None
    ) -> AsyncIterator[str | Completion]:
        """Yields text deltas as the server generates them, then the finished `Completion`.
        Fails over like `complete` while nothing has been yielded yet."""
        first, yielded = self._route(endpoint), False
        try:
            async for item in self._stream_on(first, prompt, purpose, max_output):
                yielded = True
                yield item
        except LLMUnavailable as exc:
            fb = None if yielded else self._failover(first, exc)
            if fb is None:
                raise
            try:
                async for item in self._stream_on(fb, prompt, purpose, max_output):
                    yield item
            except LLMUnavailable as again:
                fb.mark_unavailable()
                raise _both_down(exc, again) from again

    async def _stream_on(
        self, endpoint: Endpoint, prompt: Prompt, purpose: str, max_output: int | None
    ) -> AsyncIterator[str | Completion]:
        budget = await self.budget(endpoint, prompt, max_output)
        llm, cap = endpoint.llm_for(budget.max_tokens)
        async with endpoint.semaphore:
            self._log_request(endpoint, prompt, budget, purpose)
            started = time.perf_counter()
            parts: list[str] = []
            finish: str | None = None
            try:
                if endpoint.spec.prompt_style == "chat":
                    gen = await llm.astream_chat(prompt.as_messages(), **cap)
                else:
                    gen = await llm.astream_complete(prompt.as_text(), formatted=True, **cap, **_stop(prompt))
                    if prompt.primer:
                        parts.append(prompt.primer)
                        yield prompt.primer
                async for chunk in gen:
                    finish = _finish_reason(chunk.raw) or finish
                    if chunk.delta:
                        delta = chunk.delta
                        if prompt.primer and len(parts) == 1 and endpoint.spec.prompt_style != "chat":
                            delta = _separator(delta) + delta
                        parts.append(delta)
                        yield delta
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                raise self._classify(endpoint, exc) from exc
            seconds = time.perf_counter() - started
        text = "".join(parts)
        if not text.strip() and endpoint.spec.reasoning:
            event(
                "[REASONING] Empty streamed answer",
                "asking again, non-streamed, with more room",
                level=30,
                endpoint=endpoint.name,
                finish_reason=finish,
            )
            retry = await self._complete_on(endpoint, prompt, purpose, max_output, room=True)
            if retry.text:
                yield retry.text
            yield retry
            return
        result = Completion(
            text=strip_reasoning(text).strip(),
            endpoint=endpoint.name,
            model=endpoint.settings.model,
            prompt_tokens=budget.prompt_tokens,
            completion_tokens=await endpoint.count_tokens(text) if text else 0,
            seconds=seconds,
            finish_reason=finish,
            budget=budget,
        )
        endpoint.throughput.observe(result.prompt_tokens, result.completion_tokens, seconds)
        self._log_response(endpoint, result)
        yield result


def _both_down(first: LLMUnavailable, second: LLMUnavailable) -> LLMUnavailable:
    return LLMUnavailable(
        f"{first.message}; its fallback failed too: {second.message}",
        endpoint=first.details.get("endpoint"),
        fallback=second.details.get("endpoint"),
    )


_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_HARMONY_FINAL = ("<|channel|>final<|message|>", "assistantfinal")


def strip_reasoning(text: str) -> str:
    """Drop reasoning a server left in the content: `<think>` blocks, or gpt-oss's analysis
    channel when no reasoning parser split it off (everything before the final channel)."""
    for marker in _HARMONY_FINAL:
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return _THINK.sub("", text).replace("<|end|>", "").replace("<|return|>", "")


def _stop(prompt: Prompt) -> dict:
    return {"stop": prompt.stop} if prompt.stop else {}


def _joined(primer: str, generated: str) -> str:
    """The primer and what the model continued it with, as one text."""
    if not primer:
        return generated
    return primer + _separator(generated) + generated


def _separator(generated: str) -> str:
    """A space between the primer and its continuation unless the model wrote one (or punctuation)."""
    return "" if not generated or generated[:1].isspace() or generated[:1] in ",.;:!?" else " "


def _usage(raw: object) -> dict:
    usage = getattr(raw, "usage", None) if raw is not None else None
    if usage is None and isinstance(raw, dict):
        usage = raw.get("usage")
        if usage is None and "eval_count" in raw:  # Ollama
            return {"prompt_tokens": raw.get("prompt_eval_count"), "completion_tokens": raw.get("eval_count")}
    if usage is None:
        return {}
    if isinstance(usage, dict):
        return usage
    return {
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
    }


def _finish_reason(raw: object) -> str | None:
    choices = getattr(raw, "choices", None) or (raw.get("choices") if isinstance(raw, dict) else None)
    if choices:
        first = choices[0]
        return getattr(first, "finish_reason", None) or (
            first.get("finish_reason") if isinstance(first, dict) else None
        )
    if isinstance(raw, dict) and raw.get("done_reason"):
        return raw["done_reason"]
    return None
