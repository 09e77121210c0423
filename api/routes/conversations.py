"""Conversations over a space: follow-up questions, condensed from the history before retrieval,
answered as `/ask` answers, and kept. A conversation belongs to one space and, when a signed-in
person started it, to that person alone: asked for in another space or by anyone else (admins
included), it is `not_found`, exactly as if it did not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from docassist.api.audit_trail import record
from docassist.api.auth import Access
from docassist.api.conversation_schemas import (
    ConversationDetail,
    ConversationList,
    ConversationOut,
    ConversationRequest,
    MessageOut,
    MessageRequest,
    TurnResponse,
)
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.feedback_schemas import feedback_out
from docassist.api.held import HeldEventSourceResponse
from docassist.api.routes.feedback import rater_of
from docassist.api.schemas import CitationOut, SourceOut, SupportOut, error_responses, stream_schema
from docassist.api.scope_schemas import scope_out
from docassist.pipelines.conversations.events import TURN_EVENT_TYPES
from docassist.pipelines.conversations.feedback_store import Verdict
from docassist.pipelines.conversations.store import DEFAULT_PAGE, MAX_PAGE, Conversation, Message
from docassist.pipelines.identity.audit import question
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.spaces import SPACE_PATTERN
from docassist.pipelines.streams import encode

router = APIRouter(prefix="/conversations", tags=["conversations"])
SpaceQuery = Annotated[str, Query(pattern=SPACE_PATTERN, description="1–64 of [A-Za-z0-9_-]")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"items in the page, 1–{MAX_PAGE}")]
CursorQuery = Annotated[
    str | None, Query(min_length=1, max_length=512, description="the `next_cursor` of the page before; none: the first")
]
_READ = error_responses(401, 403, 404, 422, 503)
_ASK = error_responses(401, 403, 404, 408, 409, 413, 422, 429, 503)
_STREAM_SCHEMA = stream_schema(
    TURN_EVENT_TYPES, "server-sent events, as `/ask-stream` sends them; `complete` also names the stored message"
)


async def _asked(request: Request, access: Access, body: MessageRequest, conversation_id: str) -> None:
    detail = question(body.q)
    await record(request, access, "ask", space_id=body.space_id, conversation_id=conversation_id[:64], detail=detail)


def _conversation(c: Conversation) -> ConversationOut:
    return ConversationOut.model_validate({**asdict(c), "scope": scope_out(c.scope)})


def _turn_scope(body: MessageRequest) -> Scope | None:
    """The question's own scope, if it gives one; else the conversation's (None)."""
    return body.scope() if body.has_scope() else None


def _message(m: Message, verdict: Verdict | None = None) -> MessageOut:
    return MessageOut(
        message_id=m.message_id,
        role=m.role,
        text=m.text,
        created_at=m.created_at,
        language=m.language,
        standalone_question=m.standalone_question,
        grounded=m.grounded,
        citations=[CitationOut(**asdict(c)) for c in m.citations],
        sources=[SourceOut(**asdict(s)) for s in m.sources],
        support=[SupportOut.model_validate(s, from_attributes=True) for s in m.support],
        feedback=feedback_out(verdict),
    )


@router.post("", status_code=201, response_model=ConversationOut, responses=error_responses(401, 403, 422, 503))
async def create_conversation(body: ConversationRequest, assistant: AssistantDep, access: AccessDep) -> ConversationOut:
    """A new, empty conversation in the space; its title is its first question."""
    access.check_space(body.space_id)
    return _conversation(await assistant.conversations.create(body.space_id, access.owner, body.scope()))


@router.get("", response_model=ConversationList, responses=error_responses(401, 403, 422, 503))
async def list_conversations(
    assistant: AssistantDep,
    access: AccessDep,
    space_id: SpaceQuery = "default",
    limit: LimitQuery = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> ConversationList:
    """A page of your conversations in the space, newest first; `next_cursor` fetches the older
    ones (null at the end). A signed-in person sees only their own; an API key those started with
    keys. A cursor this listing did not give is 422."""
    access.check_space(space_id)
    page = await assistant.conversations.list(space_id, limit, cursor, access.owner)
    found = [_conversation(c) for c in page.conversations]
    return ConversationList(space_id=space_id, conversations=found, next_cursor=page.next_cursor)


@router.get("/{conversation_id}", response_model=ConversationDetail, responses=_READ)
async def get_conversation(
    conversation_id: str,
    assistant: AssistantDep,
    access: AccessDep,
    space_id: SpaceQuery = "default",
    limit: LimitQuery = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> ConversationDetail:
    """The conversation with its newest `limit` messages, in order, each answer with its citations
    and sources — what a chat shows first; `next_cursor` fetches the messages before them (null
    once the first is read). An answer you rated carries your verdict (`feedback`). A cursor this
    conversation did not give is 422."""
    access.check_space(space_id)
    page = await assistant.conversations.page(space_id, conversation_id, limit, cursor, access.owner)
    answers = [m.message_id for m in page.messages if m.role == "assistant"]
    verdicts = await assistant.feedback.mine(space_id, answers, rater_of(access))
    messages = [_message(m, verdicts.get(m.message_id)) for m in page.messages]
    return ConversationDetail(
        **_conversation(page.conversation).model_dump(), messages=messages, next_cursor=page.next_cursor
    )


@router.delete("/{conversation_id}", status_code=204, response_class=Response, responses=_READ)
async def delete_conversation(
    conversation_id: str,
    request: Request,
    assistant: AssistantDep,
    access: AccessDep,
    space_id: SpaceQuery = "default",
) -> Response:
    """Remove the conversation and every message of it."""
    access.check_space(space_id)
    await assistant.conversations.delete(space_id, conversation_id, access.owner)
    await record(request, access, "conversation_deleted", space_id=space_id, conversation_id=conversation_id[:64])
    return Response(status_code=204)


@router.post("/{conversation_id}/messages", response_model=TurnResponse, responses=_ASK)
async def post_message(
    conversation_id: str, body: MessageRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> TurnResponse:
    """Ask in the conversation. A follow-up is rewritten from the history into a question that
    stands on its own (`standalone_question`), which retrieval is given; the answer is in the
    language of the follow-up, as `/ask` answers it. Question and answer are stored once the
    answer is complete; an answer that fails stores nothing."""
    access.check_space(body.space_id)
    await _asked(request, access, body, conversation_id)
    with assistant.admit("answer", access.holder):
        done = await assistant.turn(
            body.space_id, conversation_id, body.q, body.mode, body.top_k, access.owner, _turn_scope(body)
        )
    return TurnResponse.of(done)


@router.post("/{conversation_id}/messages-stream", responses={200: _STREAM_SCHEMA, **_ASK})
async def post_message_stream(
    conversation_id: str, body: MessageRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> HeldEventSourceResponse:
    """The answer of `POST /conversations/{id}/messages` as the events of `/ask-stream`
    (`sources`, `processing`, `answer` deltas, `citation`, then `complete` or `error`); an unknown
    conversation is 404 before any event. Disconnecting cancels the LLM work and stores nothing."""
    access.check_space(body.space_id)
    await _asked(request, access, body, conversation_id)
    permit = assistant.admit("answer", access.holder)
    try:
        events = await assistant.turn_events(
            body.space_id, conversation_id, body.q, body.mode, body.top_k, access.owner, _turn_scope(body)
        )
    except BaseException:
        permit.release()
        raise

    async def relay() -> AsyncIterator[dict[str, str]]:
        async for ev in events:
            yield encode(ev)
            if ev.terminal:
                return

    return HeldEventSourceResponse(permit, relay())
