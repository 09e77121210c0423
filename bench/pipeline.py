"""The service's own pipeline, in this process, pointed at the service's llama.cpp server.

It yields the exact requests the service sends for a document: the same settings, prompt
templates, splitter and token budgets, with an `LLMCaller` that records each call's prompt,
`max_tokens` and stop sequences as it makes them. The recorded calls are then replayed
straight to llama.cpp as the no-pipeline baseline.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from docassist.bench.llama import Call
from docassist.bench.service import Service
from docassist.pipelines.llm.caller import Budget, LLMCaller, Prompt
from docassist.pipelines.llm.endpoints import Endpoint, build_endpoints
from docassist.pipelines.llm.prompts import render
from docassist.pipelines.settings import load_settings
from docassist.pipelines.summaries.workflow import SummarizeWorkflow, SummaryJobSpec


@dataclass
class RecordingCaller(LLMCaller):
    """An `LLMCaller` that notes every call it budgets (each call is budgeted exactly once)."""

    calls: list[Call] = field(default_factory=list)

    async def budget(self, endpoint: Endpoint, prompt: Prompt, max_output: int | None = None) -> Budget:
        budget = await super().budget(endpoint, prompt, max_output)
        self.calls.append(Call(prompt.as_text(), budget.max_tokens, list(prompt.stop), stream=False))
        return budget

    async def stream(self, endpoint, prompt, *, purpose, max_output=None):  # type: ignore[no-untyped-def]
        first = len(self.calls)
        async for item in super().stream(endpoint, prompt, purpose=purpose, max_output=max_output):
            yield item
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
        s = self.settings
        return RecordingCaller(s.llm_max_tokens, s.safety_margin, s.min_useful_output)

    @property
    def max_output(self) -> int:
        return min(self.reduce_ep.spec.summarization_max_output, self.settings.llm_max_tokens)

    def summarize(self, text: str, language: str) -> tuple[float, dict[str, Any], list[Call], dict[str, Any]]:
        """Run the summary workflow here: (seconds, result, recorded calls, stats)."""
        caller = self.caller()
        spec = SummaryJobSpec(
            text=text,
            language=language,
            map_endpoint=self.map_ep,
            reduce_endpoint=self.reduce_ep,
            caller=caller,
            max_output=self.max_output,
        )
        workflow = SummarizeWorkflow(spec)

        async def run() -> dict[str, Any]:
            return await workflow.run()

        started = time.perf_counter()
        result = self.loop.run_until_complete(run())
        seconds = time.perf_counter() - started
        stats = {"calls": workflow.stats.calls, "prompt_tokens": workflow.stats.prompt_tokens}
        return seconds, result, caller.calls, stats

    def direct_call(self, text: str, language: str) -> Call:
        """The final-pass request the service streams for a document that fits one call."""
        ep = self.reduce_ep
        prompt = render("summarize", ep.spec.prompt_style, language, text=text)
        budget = self.loop.run_until_complete(self.caller().budget(ep, prompt, self.max_output))
        return Call(prompt.as_text(), budget.max_tokens, list(prompt.stop), stream=True, purpose="final")
