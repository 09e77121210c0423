"""What one summary run keeps while it runs: the LLM calls' totals and stage times (`RunStats`,
which become the summary's usage and timing), the workflow's state, and the memo of partial
results that lets an interrupted run resume."""

from __future__ import annotations

import time
from typing import Any, Protocol

from pydantic import BaseModel, Field

from docassist.pipelines.llm.caller import Completion
from docassist.pipelines.summaries.events import Strategy, Usage


class Memo(Protocol):
    """Map/reduce outputs of one run, by the exact input (`node_key`): what lets a run resume."""

    async def get(self, node_key: str) -> tuple[str, int, int] | None: ...

    async def put(self, node_key: str, text: str, prompt_tokens: int, completion_tokens: int) -> None: ...


class NoMemo:
    async def get(self, node_key: str) -> tuple[str, int, int] | None:
        return None

    async def put(self, node_key: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        return None


class RunStats(BaseModel):
    calls: int = 0
    resumed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0
    stages: dict[str, float] = Field(default_factory=dict)
    levels: int = 0
    parts: int = 1
    language_retry: bool = False

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.llm_seconds += c.seconds

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            tokens_per_second=round(self.completion_tokens / self.llm_seconds, 1) if self.llm_seconds else 0.0,
            llm_calls=self.calls,
            resumed_calls=self.resumed_calls,
        )

    def timing(self, total_s: float) -> dict[str, Any]:
        return {
            "total_s": round(total_s, 3),
            **{f"{k}_s": round(v, 3) for k, v in self.stages.items()},
            "llm_s": round(self.llm_seconds, 3),
            "levels": self.levels,
            "parts": self.parts,
            "language_retry": self.language_retry,
        }


class RunState(BaseModel):
    language: str = "en"
    question: str | None = None
    strategy: Strategy = "direct"
    stats: RunStats = Field(default_factory=RunStats)
    level_items: dict[int, int] = Field(default_factory=dict)
    level_tokens: dict[int, int] = Field(default_factory=dict)
    level_done: dict[int, int] = Field(default_factory=dict)
    stage_started: float = 0.0

    def mark_stage(self, name: str) -> None:
        now = time.perf_counter()
        self.stats.stages[name] = self.stats.stages.get(name, 0.0) + (now - self.stage_started)
        self.stage_started = now
