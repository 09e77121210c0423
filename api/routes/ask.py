"""Questions over a space (RAG): one answer, or the answer as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.held import HeldEventSourceResponse
from docassist.api.schemas import AskRequest, AskResponse, error_responses, stream_schema
from docassist.pipelines.answers.events import ASK_EVENT_TYPES
from docassist.pipelines.identity.audit import question
from docassist.pipelines.streams import encode

router = APIRouter(tags=["answers"])
_ERRORS = error_responses(401, 403, 408, 409, 413, 422, 429, 503)
_STREAM_SCHEMA = stream_schema(
    ASK_EVENT_TYPES, "server-sent events; each `data:` line is the JSON of the event named in `event:`"
)


@router.post("/ask", response_model=AskResponse, responses=_ERRORS)
async def ask(body: AskRequest, request: Request, assistant: AssistantDep, access: AccessDep) -> AskResponse:
    """Answer from the space's best chunks, in the language of the question. `auto` summarizes the
    context first when it exceeds the model's threshold, `summarize` always does, `direct` never.
    `citations` are the sentences the answer rests on; `grounded: false` when no sentence of the
    chunks supports the question — the answer then says the documents do not hold it."""
    access.check_space(body.space_id)
    scope = body.scope()
    await record(request, access, "ask", space_id=body.space_id, detail=question(body.q))
    with assistant.admit("answer", access.holder):
        done = await assistant.ask(body.q, body.space_id, body.mode, body.top_k, scope)
    return AskResponse.of(done)


@router.post("/ask-stream", responses={200: _STREAM_SCHEMA, **_ERRORS})
async def ask_stream(
    body: AskRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> HeldEventSourceResponse:
    """The answer of `/ask` as server-sent events: `sources` (the chosen chunks, before any answer
    text), `processing` while a large context is condensed, `answer` deltas as the model writes,
    then `complete` (the body `/ask` returns) or `error`. Disconnecting cancels the LLM work."""
    access.check_space(body.space_id)
    scope = body.scope()
    await record(request, access, "ask", space_id=body.space_id, detail=question(body.q))
    events = await assistant.ask_events(body.q, body.space_id, body.mode, body.top_k, scope=scope)  # lazy: no work yet
    permit = assistant.admit("answer", access.holder)

    async def relay() -> AsyncIterator[dict[str, str]]:
        async for ev in events:
            yield encode(ev)
            if ev.terminal:
                return

    return HeldEventSourceResponse(permit, relay())
