"""The events of a conversation's turn: those of `/ask-stream`, with a `complete` that also says
which message the answer was stored as and what question retrieval was given."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from docassist.pipelines.answers.events import ASK_EVENT_TYPES, AskComplete
from docassist.pipelines.streams import StreamEvent


class TurnComplete(AskComplete):
    name: ClassVar[str] = "complete"
    conversation_id: str
    message_id: str = Field(description="the stored answer")
    standalone_question: str = Field(description="the follow-up rewritten from the history: what was retrieved for")
    condensed: Literal["first", "llm", "history", "fallback"] = Field(
        description="first: the first question, asked as it is; llm: rewritten by the model; "
        "history: the previous question and the follow-up together, no LLM call (the model is set to "
        "condense=history); fallback: the same, because the rewrite failed or was unusable"
    )


TURN_EVENT_TYPES: dict[str, type[StreamEvent]] = {**ASK_EVENT_TYPES, TurnComplete.name: TurnComplete}
