"""Questions over a space (RAG): one answer, or the answer as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request

from docassist.api.audit_trail import record
from docassist.api.auth import Access
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.held import HeldEventSourceResponse
from docassist.api.schemas import AskRequest, AskResponse, error_responses, stream_schema
from docassist.pipelines.answers.events import ASK_EVENT_TYPES, AskComplete
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.identity.audit import question
from docassist.pipelines.logs import request_id_var
from docassist.pipelines.streams import encode

router = APIRouter(tags=["answers"])
_ERRORS = error_responses(401, 403, 408, 409, 413, 422, 429, 503)
_STREAM_SCHEMA = stream_schema(
    ASK_EVENT_TYPES, "server-sent events; each `data:` line is the JSON of the event named in `event:`"
)


async def _keep(assistant: Assistant, access: Access, body: AskRequest, request_id: str, done: AskComplete) -> None:
    """The answer kept by its request id, for `POST /ask/{request_id}/feedback`."""
    if request_id not in ("", "-"):
        await assistant.feedback.keep_asked(request_id, body.space_id, access.owner, body.q, done)


@router.post("/ask", response_model=AskResponse, responses=_ERRORS)
async def ask(body: AskRequest, request: Request, assistant: AssistantDep, access: AccessDep) -> AskResponse:
    """Answer from the space's best chunks, in the language of the question. `auto` summarizes the
    context first when it exceeds the model's threshold, `summarize` always does, `direct` never.
    `citations` are the sentences the answer rests on; `grounded: false` when no sentence of the
    chunks supports the question — the answer then says the documents do not hold it. The answer is
    kept by the response's `X-Request-ID`, which `POST /ask/{request_id}/feedback` rates it by."""
    access.check_space(body.space_id)
    scope = body.scope()
    await record(request, access, "ask", space_id=body.space_id, detail=question(body.q))
    with assistant.admit("answer", access.holder):
        done = await assistant.ask(body.q, body.space_id, body.mode, body.top_k, scope)
    await _keep(assistant, access, body, request_id_var.get(), done)
    return AskResponse.of(done)


@router.post("/ask-stream", responses={200: _STREAM_SCHEMA, **_ERRORS})
async def ask_stream(
    body: AskRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> HeldEventSourceResponse:
    """The answer of `/ask` as server-sent events: `sources` (the chosen chunks, before any answer
    text), `processing` while a large context is condensed, `answer` deltas as the model writes,
    then `complete` (the body `/ask` returns) or `error`. Disconnecting cancels the LLM work. A
    complete answer is kept by `X-Request-ID`, as `/ask` keeps it."""
    access.check_space(body.space_id)
    scope = body.scope()
    await record(request, access, "ask", space_id=body.space_id, detail=question(body.q))
    events = await assistant.ask_events(body.q, body.space_id, body.mode, body.top_k, scope=scope)  # lazy: no work yet
    permit = assistant.admit("answer", access.holder)
    request_id = request_id_var.get()

    async def relay() -> AsyncIterator[dict[str, str]]:
        async for ev in events:
            if isinstance(ev, AskComplete):  # kept before it is sent: rateable once the client has it
                await _keep(assistant, access, body, request_id, ev)
            yield encode(ev)
            if ev.terminal:
                return

    return HeldEventSourceResponse(permit, relay())
