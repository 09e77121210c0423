"""The reader's verdict on an answer at the HTTP edge: what is posted, and what is kept."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field

from docassist.api.schemas import Request, SpaceId
from docassist.pipelines.conversations.feedback import MAX_COMMENT_CHARS
from docassist.pipelines.conversations.feedback_store import Verdict


class FeedbackRequest(Request):
    rating: Literal["up", "down"] = Field(description="thumbs up or down")
    comment: str | None = Field(
        default=None,
        max_length=MAX_COMMENT_CHARS,
        description=f"why, in words (optional; {MAX_COMMENT_CHARS:,} at most)",
    )
    space_id: str = SpaceId


class FeedbackOut(BaseModel):
    """Your verdict on the answer (one per answer and person, or API key: a new one replaces it)."""

    rating: Literal["up", "down"]
    comment: str | None
    created_at: float


class FeedbackResponse(FeedbackOut):
    space_id: str
    source: Literal["conversation", "ask"] = Field(description="a conversation's answer, or an `/ask` answer")
    conversation_id: str | None = None
    message_id: str | None = Field(default=None, description="the conversation's answer rated")
    request_id: str | None = Field(default=None, description="the `X-Request-ID` the `/ask` answer was given in")

    @classmethod
    def of(cls, v: Verdict) -> Self:
        return cls(
            rating=v.rating,
            comment=v.comment,
            created_at=v.created_at,
            space_id=v.space_id,
            source=v.source,
            conversation_id=v.conversation_id,
            message_id=v.answer_id if v.source == "conversation" else None,
            request_id=v.request_id,
        )


def feedback_out(v: Verdict | None) -> FeedbackOut | None:
    return None if v is None else FeedbackOut(rating=v.rating, comment=v.comment, created_at=v.created_at)
