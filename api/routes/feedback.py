"""The reader's verdict on an answer: thumbs up or down, with an optional comment, on a
conversation's answer (by its message id) or an `/ask` answer (by the `X-Request-ID` it was given
in). Whoever may read the answer may rate it (a reader of its space; a person's conversation or
question, that person alone): any other answer is 404, as reading it is. One verdict per answer
and caller — a person, an API key, or everyone on an open service — a new one replacing it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from docassist.api.audit_trail import record
from docassist.api.auth import Access
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.feedback_schemas import FeedbackRequest, FeedbackResponse
from docassist.api.schemas import error_responses

router = APIRouter(tags=["feedback"])
_ERRORS = error_responses(401, 403, 404, 413, 422, 503)


def rater_of(access: Access) -> str:
    """Whose verdict it is: the person's, the key's, or (no keys, no sign-in) everyone's."""
    return access.holder or "open"


@router.post(
    "/conversations/{conversation_id}/messages/{message_id}/feedback",
    response_model=FeedbackResponse,
    responses=_ERRORS,
)
async def rate_message(
    conversation_id: str,
    message_id: str,
    body: FeedbackRequest,
    request: Request,
    assistant: AssistantDep,
    access: AccessDep,
) -> FeedbackResponse:
    """Rate an answer of the conversation (`message_id` of `GET /conversations/{id}` or of the
    turn's `complete`), replacing your earlier verdict on it; `GET /conversations/{id}` shows it as
    the message's `feedback`. A question, or an answer of another conversation, space or person,
    is 404."""
    access.check_space(body.space_id)
    kept = await assistant.feedback.rate_message(
        body.space_id, conversation_id, message_id, access.owner, rater_of(access), body.rating, body.comment
    )
    detail = f"{body.rating} on answer {message_id[:64]}"
    await record(
        request, access, "feedback", space_id=body.space_id, conversation_id=conversation_id[:64], detail=detail
    )
    return FeedbackResponse.of(kept)


@router.post("/ask/{request_id}/feedback", response_model=FeedbackResponse, responses=_ERRORS)
async def rate_asked(
    request_id: str, body: FeedbackRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> FeedbackResponse:
    """Rate the `/ask` (or `/ask-stream`) answer given in request `request_id` — the `X-Request-ID`
    of its response — replacing your earlier verdict on it. An answer of another space or person,
    or one not rated within 30 days (kept no longer), is 404."""
    access.check_space(body.space_id)
    kept = await assistant.feedback.rate_asked(
        body.space_id, request_id, access.owner, rater_of(access), body.rating, body.comment
    )
    detail = f"{body.rating} on the answer of request {request_id[:64]}"
    await record(request, access, "feedback", space_id=body.space_id, detail=detail)
    return FeedbackResponse.of(kept)
