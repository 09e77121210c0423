"""Conversations at the HTTP edge: a conversation, its pages of messages, and a turn's answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from docassist.api.feedback_schemas import FeedbackOut
from docassist.api.schemas import AskRequest, AskResponse, CitationOut, Request, SourceOut, SpaceId, SupportOut
from docassist.api.scope_schemas import ScopeFields


class ConversationRequest(ScopeFields, Request):
    """A new conversation; the scope given is kept for its questions (a question may give its own)."""

    space_id: str = SpaceId


class MessageRequest(AskRequest):
    """A question in a conversation: a follow-up may refer to the earlier ones ("its", "and then?")."""


class ConversationOut(BaseModel):
    conversation_id: str
    space_id: str
    title: str = Field(description="the first question, cut to 80 characters; empty before any")
    created_at: float
    updated_at: float
    scope: dict[str, Any] | None = Field(default=None, description="the documents its questions read; null: all")


class ConversationList(BaseModel):
    space_id: str
    conversations: list[ConversationOut] = Field(description="newest first: up to `limit` of them")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the older ones; null when these are the last (opaque: never build one)"
    )


class MessageOut(BaseModel):
    message_id: str
    role: Literal["user", "assistant"]
    text: str
    created_at: float
    language: str | None = None
    standalone_question: str | None = Field(
        default=None, description="questions: the question rewritten from the history, as retrieval was given it"
    )
    grounded: bool | None = Field(default=None, description="answers: see `/ask`")
    citations: list[CitationOut] = Field(default_factory=list, description="answers: the sentences it rests on")
    sources: list[SourceOut] = Field(default_factory=list, description="answers: the passages it was written from")
    support: list[SupportOut] = Field(
        default_factory=list, description="answers: each sentence with the citation it rests on (see `/ask`)"
    )
    feedback: FeedbackOut | None = Field(
        default=None, description="answers: your verdict on it (`POST …/messages/{message_id}/feedback`); null: none"
    )


class ConversationDetail(ConversationOut):
    messages: list[MessageOut] = Field(
        description="the newest `limit` messages not yet read, in order (oldest first): each question followed by "
        "its answer"
    )
    next_cursor: str | None = Field(
        description="pass as `cursor` for the messages before these; null when these start at the first "
        "(opaque: never build one)"
    )


class TurnResponse(AskResponse):
    conversation_id: str
    message_id: str = Field(description="the stored answer")
    standalone_question: str = Field(description="the follow-up rewritten from the history: what was retrieved for")
    condensed: Literal["first", "llm", "history", "fallback"] = Field(
        description="first: asked as it is; llm: rewritten by the model; history: the previous question and the "
        "follow-up together, no LLM call (the model is set to condense=history); fallback: the same, where the "
        "rewrite failed or was unusable"
    )
