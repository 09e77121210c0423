"""The service's own pipeline, in this process, pointed at the service's llama.cpp server.

It yields the exact requests the service sends for a document: the same settings, prompt
templates, splitter and token budgets, with an `LLMCaller` that records each call's prompt,
`max_tokens` and stop sequences as it makes them. The recorded calls are then replayed
straight to llama.cpp as the no-pipeline baseline.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from docassist.bench.llama import Call
from docassist.bench.service import Service
from docassist.pipelines.llm.budget import Budget
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint, build_endpoints
from docassist.pipelines.llm.prompts import Prompt, render
from docassist.pipelines.settings import load_settings
from docassist.pipelines.summaries.workflow import SummarizeInput, SummarizeWorkflow


class RecordingCaller(LLMCaller):
    """An `LLMCaller` that notes every call it budgets (each call is budgeted exactly once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[Call] = []

    async def budget(self, endpoint: Endpoint, prompt: Prompt, max_output: int | None = None) -> Budget:
        budget = await super().budget(endpoint, prompt, max_output)
        self.calls.append(Call(prompt.as_text(), budget.max_tokens, list(prompt.stop), stream=False))
        return budget

    async def stream(self, endpoint, prompt, *, purpose, max_output=None, buffered=False):  # type: ignore[no-untyped-def]
        first = len(self.calls)
        async for item in super().stream(endpoint, prompt, purpose=purpose, max_output=max_output, buffered=buffered):
            yield item
        if buffered:
            return
        for call in self.calls[first:]:
            call.stream, call.purpose = True, purpose


class InProcess:
    """Endpoints and caller built from the service's settings, against its llama.cpp server."""

    def __init__(self, service: Service) -> None:
        self.settings = load_settings({**service.env, "LLAMA_SERVER_URL": service.llama_url})
        self.endpoints = build_endpoints(self.settings, {})
        routing = self.settings.profile.routing
        self.map_ep, self.reduce_ep = self.endpoints[routing.map], self.endpoints[routing.reduce]
        self.loop = asyncio.new_event_loop()  # one loop for all runs: OpenAILike keeps its async client

    def close(self) -> None:
        self.loop.close()

    def caller(self) -> RecordingCaller:
        return RecordingCaller(self.settings.limits)

    @property
    def max_output(self) -> int:
        return self.settings.limits.output(self.reduce_ep.spec.summarization_max_output)

    def summarize(self, text: str, language: str) -> tuple[float, dict[str, Any], list[Call], dict[str, Any]]:
        """Run the summary workflow here: (seconds, result, recorded calls, stats)."""
        caller = self.caller()
        workflow = SummarizeWorkflow(caller, self.map_ep, self.reduce_ep)

        async def run() -> Any:
            return await workflow.run(start_event=SummarizeInput(text=text, language=language))

        started = time.perf_counter()
        result = self.loop.run_until_complete(run())
        seconds = time.perf_counter() - started
        stats = {"calls": result.stats.calls, "prompt_tokens": result.stats.prompt_tokens}
        return seconds, {"summary": result.summary, "strategy": result.strategy}, caller.calls, stats

    def direct_call(self, text: str, language: str) -> Call:
        """The final-pass request the service streams for a document that fits one call."""
        ep = self.reduce_ep
        prompt = render("summarize", ep.spec.prompt_style, language, text=text)
        budget = self.loop.run_until_complete(self.caller().budget(ep, prompt, self.max_output))
        return Call(prompt.as_text(), budget.max_tokens, list(prompt.stop), stream=True, purpose="final")
