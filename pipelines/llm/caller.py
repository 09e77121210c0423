"""The one LLM call path every pipeline uses.

A call counts its prompt with the endpoint's tokenizer, sizes `max_tokens` to what the context
window leaves (`budget.py`; a prompt that cannot fit is never sent), waits its turn on the
endpoint's concurrency limit, streams the answer (each token is a sign of life for `/health`),
and logs request and response. Transport failures become `LLMUnavailable` naming the
endpoint, context-length refusals `ContextOverflow` (callers split their input), and an
endpoint that is down hands the call to its failover partner while nothing has been shown.
A reasoning model that spent its whole budget thinking is asked once more with all the room
the window leaves and low reasoning effort; reasoning text is never part of a result. A call
that writes a sentence a third time is stopped and asked once more with the model's stronger
penalties (`repetition.py`); a stream that showed text says `Restart` first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from docassist.pipelines import metrics, tracing
from docassist.pipelines.errors import ContextOverflow, LLMUnavailable
from docassist.pipelines.llm.budget import Budget, Limits
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.llm.prompts import Prompt
from docassist.pipelines.llm.repetition import REPETITION, Loop, RepetitionWatch, Restart, log_loop
from docassist.pipelines.llm.wire import finish_reason_of, open_stream, separator, strip_reasoning, usage_of
from docassist.pipelines.logs import clock, event


@dataclass
class Completion:
    text: str
    endpoint: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str | None = None  # the server's, or "repetition": cut before a sentence's third copy
    budget: Budget | None = None
    loops: tuple[Loop, ...] = ()  # each attempt that looped: one, asked again; two, the retry's text cut too

    @property
    def tokens_per_second(self) -> float:
        return round(self.completion_tokens / self.seconds, 1) if self.seconds > 0 else 0.0


@dataclass
class _Run:
    """One generation as it streams: what the server sent, what the watch let through, how it ended."""

    watch: RepetitionWatch = field(default_factory=RepetitionWatch)
    parts: list[str] = field(default_factory=list)
    finish: str | None = None
    usage: dict = field(default_factory=dict)
    seconds: float = 0.0


class LLMCaller:
    """Bound to the service's limits (`LLM_MAX_TOKENS`, safety margin, minimum useful output)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    async def budget(self, endpoint: Endpoint, prompt: Prompt, max_output: int | None = None) -> Budget:
        tokens = await endpoint.tokens.exact_prompt(prompt, endpoint.style)
        budget = self.limits.call(endpoint.spec.context_window, tokens, max_output)
        configured = min(self.limits.max_tokens, max_output or self.limits.max_tokens)
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

    async def complete(
        self, endpoint: Endpoint, prompt: Prompt, *, purpose: str, max_output: int | None = None
    ) -> Completion:
        """One budgeted, logged call; the whole text at once. Fails over whenever the endpoint fails."""
        async for item in self.stream(endpoint, prompt, purpose=purpose, max_output=max_output, buffered=True):
            if isinstance(item, Completion):
                return item
        raise AssertionError("a call ends with its Completion")

    async def stream(
        self,
        endpoint: Endpoint,
        prompt: Prompt,
        *,
        purpose: str,
        max_output: int | None = None,
        buffered: bool = False,
    ) -> AsyncIterator[str | Completion]:
        """Text deltas as the server generates them, then the finished `Completion`. Fails over to
        the endpoint's partner while nothing has been yielded (`buffered`: yield nothing until done)."""
        first, shown = self._route(endpoint), False
        try:
            async for item in self._attempt(first, prompt, purpose, max_output, buffered):
                shown = True
                yield item
        except LLMUnavailable as exc:
            fallback = None if shown else self._failover(first, exc)
            if fallback is None:
                raise
            try:
                async for item in self._attempt(fallback, prompt, purpose, max_output, buffered):
                    yield item
            except LLMUnavailable as again:
                fallback.mark_unavailable()
                raise _both_down(exc, again) from again

    async def _attempt(
        self, endpoint: Endpoint, prompt: Prompt, purpose: str, max_output: int | None, buffered: bool
    ) -> AsyncIterator[str | Completion]:
        if not buffered:
            async for item in self._observed(endpoint, prompt, purpose, max_output):
                yield item
            return
        items = [item async for item in self._observed(endpoint, prompt, purpose, max_output)]
        restarts = [i for i, item in enumerate(items) if isinstance(item, Restart)]
        for item in items[restarts[-1] + 1 if restarts else 0 :]:  # nothing was shown: no restart to tell
            yield item

    async def _observed(
        self, endpoint: Endpoint, prompt: Prompt, purpose: str, max_output: int | None
    ) -> AsyncIterator[str | Completion]:
        """`_call` as metrics and traces see it: one `llm.call` span from the wait for a slot to the
        last token — not made current, since whoever consumes this generator would run inside it
        between yields — and the call's figures once it ends."""
        kind = metrics.kind_of(purpose)
        span = tracing.start(
            "llm.call", **{"llm.endpoint": endpoint.name, "llm.kind": kind, "llm.model": endpoint.settings.model}
        )
        ended = False
        try:
            async for item in self._call(endpoint, prompt, purpose, max_output):
                if isinstance(item, Completion):
                    metrics.llm_call(endpoint.name, purpose, item.prompt_tokens, item.completion_tokens, item.seconds)
                    tracing.finish(span, **_span_figures(item))
                    ended = True
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            if not ended:
                tracing.finish(span, **{"llm.cancelled": True})
            raise
        except BaseException as exc:
            metrics.llm_failed(endpoint.name, purpose)
            if not ended:
                tracing.finish(span, exc)
            raise

    async def _call(
        self, endpoint: Endpoint, prompt: Prompt, purpose: str, max_output: int | None, room: bool = False
    ) -> AsyncIterator[str | Completion]:
        budget = await self.budget(endpoint, prompt, max_output)
        if room:
            budget = budget.all_room()
        loops: tuple[Loop, ...] = ()
        async with endpoint.limiter.slot():  # a loop's retry follows at once, while the server holds the prompt
            run = _Run()
            async for delta in self._generate(endpoint, prompt, purpose, budget, run, room, strong=False):
                yield delta
            if run.watch.loop is not None:
                loops = (run.watch.loop,)
                self._received(endpoint, await self._completion(endpoint, prompt, budget, run, loops))
                log_loop(endpoint.name, purpose, run.watch.loop, endpoint.spec.repetition.retry)
                yield Restart()
                run = _Run()
                async for delta in self._generate(endpoint, prompt, purpose, budget, run, room, strong=True):
                    yield delta
        if not _generated(endpoint, prompt, run).strip() and endpoint.spec.reasoning and not room:
            _log_empty_reasoning(endpoint, budget, run.finish)
            async for item in self._call(endpoint, prompt, purpose, max_output, room=True):
                yield item
            return
        if run.watch.loop is not None:
            log_loop(endpoint.name, purpose, run.watch.loop, None)
            loops = (*loops, run.watch.loop)
        yield self._received(endpoint, await self._completion(endpoint, prompt, budget, run, loops))

    async def _completion(
        self, endpoint: Endpoint, prompt: Prompt, budget: Budget, run: _Run, loops: tuple[Loop, ...]
    ) -> Completion:
        """What one attempt gave: the text the watch let through, the tokens the server generated."""
        generated = _generated(endpoint, prompt, run)
        return Completion(
            text=strip_reasoning(run.watch.shown).strip(),
            endpoint=endpoint.name,
            model=endpoint.settings.model,
            prompt_tokens=run.usage.get("prompt_tokens") or budget.prompt_tokens,
            completion_tokens=run.usage.get("completion_tokens") or await endpoint.tokens.exact_generated(generated),
            seconds=run.seconds,
            finish_reason=REPETITION if run.watch.loop else run.finish,
            budget=budget,
            loops=loops,
        )

    async def _generate(
        self, endpoint: Endpoint, prompt: Prompt, purpose: str, budget: Budget, run: _Run, room: bool, strong: bool
    ) -> AsyncIterator[str]:
        """One attempt, in the endpoint's slot: the server's deltas as the repetition watch lets them
        through; the stream is closed as soon as the watch finds a sentence written a third time."""
        llm, kwargs = endpoint.llm_for(budget.max_tokens, all_room=room, strong=strong)
        chat = endpoint.style == "chat"
        self._log_request(endpoint, prompt, budget, purpose)
        started = time.perf_counter()
        with endpoint.inflight.track(purpose) as call:
            try:
                async with asyncio.timeout(endpoint.settings.timeout_s):
                    gen = await open_stream(llm, prompt, chat, kwargs)
                    if prompt.primer and not chat:
                        run.parts.append(prompt.primer)
                        if shown := run.watch.feed(prompt.primer):
                            yield shown
                    async for chunk in gen:
                        call.progress()
                        run.finish = finish_reason_of(chunk.raw) or run.finish
                        run.usage = usage_of(chunk.raw) or run.usage
                        if chunk.delta:
                            delta = chunk.delta
                            if len(run.parts) == 1 and prompt.primer and not chat:
                                delta = separator(delta) + delta
                            run.parts.append(delta)
                            if shown := run.watch.feed(delta):
                                yield shown
                            if run.watch.loop:
                                await gen.aclose()  # the server stops generating when the stream closes
                                break
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except TimeoutError as exc:
                raise self._unavailable(endpoint, exc) from exc
            except Exception as exc:
                raise self._classify(endpoint, exc) from exc
        run.seconds = time.perf_counter() - started
        if rest := run.watch.finish():
            yield rest

    def _received(self, endpoint: Endpoint, result: Completion) -> Completion:
        endpoint.throughput.observe(result.prompt_tokens, result.completion_tokens, result.seconds)
        self._log_response(endpoint, result)
        return result

    def _log_request(self, endpoint: Endpoint, prompt: Prompt, budget: Budget, purpose: str) -> None:
        chars = len(prompt.as_text())
        event(
            f"[LLM REQUEST → {endpoint.provider}] Model: {endpoint.settings.model}",
            f"📝 INPUT ({purpose}, endpoint {endpoint.name}):",
            f"  - Prompt: {chars:,} chars, {budget.prompt_tokens:,} tokens",
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
            f"  - Response: {len(result.text):,} chars, {result.completion_tokens:,} tokens",
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

    def _unavailable(self, endpoint: Endpoint, exc: BaseException, reason: str = "") -> LLMUnavailable:
        """The error a client sees names the endpoint, never its address; the log has both."""
        timed_out = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        reason = reason or ("timed out" if timed_out else "is unavailable")
        event(
            f"[LLM] '{endpoint.name}' {reason}",
            f"{endpoint.provider} at {endpoint.base_url}: {type(exc).__name__}: {exc}",
            level=logging.WARNING,
            endpoint=endpoint.name,
        )
        return LLMUnavailable(f"LLM endpoint '{endpoint.name}' ({endpoint.provider}) {reason}", endpoint=endpoint.name)

    def _classify(self, endpoint: Endpoint, exc: Exception) -> Exception:
        text = str(exc).lower()
        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
        explained = endpoint.backend.explain(endpoint.settings, status, text)
        if explained is not None:
            return explained
        if status == 400 and ("context" in text or "maximum" in text or "too long" in text):
            return ContextOverflow(f"{endpoint.name}: {exc}", endpoint=endpoint.name)
        if status in (401, 403):
            return self._unavailable(endpoint, exc, "refused docassist's key (check the endpoint's api_key)")
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
                level=logging.WARNING,
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
            level=logging.WARNING,
        )
        return fb


def _generated(endpoint: Endpoint, prompt: Prompt, run: _Run) -> str:
    """What the server generated: all it sent, less the completion form's primer."""
    received = "".join(run.parts)
    return received[len(prompt.primer) :] if prompt.primer and endpoint.style != "chat" else received


def _span_figures(result: Completion) -> dict[str, str | int | float]:
    figures: dict[str, str | int | float] = {
        "llm.prompt_tokens": result.prompt_tokens,
        "llm.completion_tokens": result.completion_tokens,
        "llm.seconds": round(result.seconds, 3),
        "llm.finish_reason": result.finish_reason or "",
    }
    if result.budget is not None:
        figures["llm.max_tokens"] = result.budget.max_tokens
    return figures


def _both_down(first: LLMUnavailable, second: LLMUnavailable) -> LLMUnavailable:
    return LLMUnavailable(
        f"{first.message}; its fallback failed too: {second.message}",
        endpoint=first.details.get("endpoint"),
        fallback=second.details.get("endpoint"),
    )


def _log_empty_reasoning(endpoint: Endpoint, budget: Budget, finish: str | None) -> None:
    event(
        "[REASONING] Empty answer: the reasoning used the whole budget",
        f"asking once more with all {budget.available:,} tokens the window leaves and low reasoning effort",
        endpoint=endpoint.name,
        max_tokens=budget.max_tokens,
        finish_reason=finish,
        level=logging.WARNING,
    )
