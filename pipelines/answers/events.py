"""The events of an answer, as `/ask-stream` sends them: `sources` once the context is chosen (before
any answer text), `processing` while a large context is condensed first, `answer` deltas as the
model writes, a `citation` per sentence the answer rests on, then `complete` (the whole answer,
as `/ask` returns it) or `error`.

`AskComplete` is the one type of a finished answer: the ask workflow ends with it, the stream sends
it, `/ask` and a conversation's turn return it (the HTTP edge renders it as `AskResponse`), `/v1`
and the MCP tool read it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from workflows.events import StopEvent

from docassist.pipelines.answers.citations import Citation
from docassist.pipelines.answers.support import SentenceSupport
from docassist.pipelines.search.retrieval import Source
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import SummaryError, SummaryProgress, Usage


class AskSources(StreamEvent):
    """What the answer is made from: the chosen chunks, and whether they are condensed first."""

    name: ClassVar[str] = "sources"
    sources: list[Source]
    summarized: bool
    context_tokens: int
    language: str


class AnswerDelta(StreamEvent):
    """Answer text as it is generated; `reset` starts it over (a retry in the question's language)."""

    name: ClassVar[str] = "answer"
    delta: str
    reset: bool = False


class AskCitation(StreamEvent):
    """A sentence of a source the answer rests on, after the answer is written."""

    name: ClassVar[str] = "citation"
    citation: Citation


class AskComplete(StreamEvent, StopEvent):
    """The whole answer, with where it came from, what it rests on, and what it cost."""

    name: ClassVar[str] = "complete"
    terminal: ClassVar[bool] = True
    answer: str
    mode: str
    summarized: bool
    context_tokens: int
    language: str
    sources: list[Source]
    timing: dict[str, float]
    usage: Usage
    citations: list[Citation] = Field(default_factory=list)
    grounded: bool = False
    support: list[SentenceSupport] = Field(default_factory=list)  # each answer sentence and its citation
    # cut at its token cap: `/v1` says finish_reason "length"; not sent, so `complete` stays `/ask`'s body
    truncated: bool = Field(default=False, exclude=True)


AskError = SummaryError
ASK_EVENT_TYPES: dict[str, type[StreamEvent]] = {
    cls.name: cls for cls in (AskSources, SummaryProgress, AnswerDelta, AskCitation, AskComplete, AskError)
}
