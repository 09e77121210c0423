"""The events of a summary run: one set of models for the workflow that writes them, the flight
that relays them, the job that records its progress from them, and `/summarize-stream`, whose
OpenAPI description is generated from them.

Each class is a LlamaIndex workflow `Event` (a pydantic model) with the server-sent event name
it goes out under: `start`, `processing`, `summary`, `complete`, `error`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field

from docassist.pipelines.documents.locations import Location
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.streams import StreamEvent

Strategy = Literal["direct", "tree"]


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_per_second: float = 0.0
    llm_calls: int = 0
    resumed_calls: int = Field(default=0, description="map/reduce outputs reused from an interrupted run")


class SummaryStart(StreamEvent):
    """Sent before any LLM work, with the plan estimated from the text's length."""

    name: ClassVar[str] = "start"
    doc_id: str
    strategy: Strategy
    chunks: int = Field(description="parts the document is read in: 1 when direct, the map parts when tree")
    language: str
    eta_s: float
    cached: bool = False


class SummaryProgress(StreamEvent):
    """One map or reduce step finished."""

    name: ClassVar[str] = "processing"
    stage: Literal["map", "reduce"]
    level: int
    done: int
    total: int
    eta_s: float


class SummaryDelta(StreamEvent):
    """Text of the final pass as it is generated; `reset` starts the text over (language retry)."""

    name: ClassVar[str] = "summary"
    delta: str
    reset: bool = False


class SummaryCitation(BaseModel):
    """The passage of the document a summary sentence rests on."""

    doc_id: str
    quote: str
    start: int | None = Field(default=None, description="offset of `quote` in the document's text")
    end: int | None = None
    location: Location | None = Field(default=None, description="where the quote sits: its page, slide, rows…")
    score: float = Field(default=0.0, description="how close the sentence is to the quote (embedding similarity)")


class SummarySentence(BaseModel):
    """One sentence of a summary and the passage it rests on (none where no passage is close)."""

    text: str
    citations: list[SummaryCitation] = Field(default_factory=list)


class SummaryComplete(StreamEvent):
    name: ClassVar[str] = "complete"
    terminal: ClassVar[bool] = True
    doc_id: str
    summary: str
    cached: bool
    language: str
    strategy: Strategy
    timing: dict[str, Any] = Field(
        description="seconds per stage (`map_s`, `final_s`, …), `total_s`; when cached: "
        "`lookup_ms`, `cached_at` and the `computed` timing"
    )
    usage: Usage
    sentences: list[SummarySentence] = Field(
        default_factory=list,
        description="the summary sentence by sentence, each with the passage of the document it rests on; "
        "`summary` is their text joined (empty where the summary was written by a process without the search "
        "parts, until a serving process first reads it)",
    )


class SummaryError(StreamEvent):
    name: ClassVar[str] = "error"
    terminal: ClassVar[bool] = True
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, exc: DocassistError) -> SummaryError:
        return cls(code=exc.code, message=exc.message, details=exc.details)

    def exception(self) -> DocassistError:
        return DocassistError.from_code(self.code, self.message, **self.details)


E = TypeVar("E", bound=StreamEvent)


async def last_event(events: AsyncIterator[StreamEvent], kind: type[E], what: str = "answer") -> E:
    """The `kind` event that ends a run's events (a summary's or an answer's); its `error` raised.
    Returning closes the events at once, which cancels the workflow and frees its LLM slot."""
    async with contextlib.aclosing(events) as stream:
        async for ev in stream:
            if isinstance(ev, kind):
                return ev
            if isinstance(ev, SummaryError):
                raise ev.exception()
    raise DocassistError(f"the {what} ended without a result")


EVENT_TYPES: dict[str, type[StreamEvent]] = {
    cls.name: cls for cls in (SummaryStart, SummaryProgress, SummaryDelta, SummaryComplete, SummaryError)
}


def decode(name: str, data: str) -> StreamEvent:
    return EVENT_TYPES[name].model_validate_json(data)


class JobProgress(BaseModel):
    """A background job's progress, advanced by the events of the run it follows."""

    stage: Literal["queued", "start", "map", "reduce", "final", "done"] = "queued"
    strategy: Strategy | None = None
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    resumed: bool = False

    def advance(self, ev: StreamEvent) -> JobProgress:
        if isinstance(ev, SummaryStart):
            return self.model_copy(
                update={"stage": "start", "strategy": ev.strategy, "done": 0, "total": ev.chunks, "eta_s": ev.eta_s}
            )
        if isinstance(ev, SummaryProgress):
            return self.model_copy(update={"stage": ev.stage, "done": ev.done, "total": ev.total, "eta_s": ev.eta_s})
        if isinstance(ev, SummaryDelta) and self.stage != "final":
            return self.model_copy(update={"stage": "final"})
        if isinstance(ev, SummaryComplete):
            total = max(self.total, 1)
            return self.model_copy(update={"stage": "done", "done": total, "total": total, "eta_s": 0.0})
        return self
