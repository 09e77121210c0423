"""Summaries of whole documents: one answer, or a stream of server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.held import HeldEventSourceResponse
from docassist.api.schemas import SummarizeRequest, SummarizeResponse, error_responses, stream_schema
from docassist.pipelines.streams import encode
from docassist.pipelines.summaries.events import EVENT_TYPES

router = APIRouter(tags=["summaries"])
_ERRORS = error_responses(401, 403, 404, 408, 409, 413, 422, 429, 503)
_STREAM_SCHEMA = stream_schema(
    EVENT_TYPES, "server-sent events; each `data:` line is the JSON of the event named in `event:`"
)


@router.post("/summarize", response_model=SummarizeResponse, responses=_ERRORS)
async def summarize(
    body: SummarizeRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> SummarizeResponse:
    """The whole document's summary in its language (or `language`): one LLM call when it fits
    the model's budget, map-reduce otherwise. A cached summary comes back with `cached: true`."""
    access.check_space(body.space_id)
    await record(request, access, "summarize", space_id=body.space_id, doc_id=body.doc_id)
    with assistant.admit("answer", access.holder):
        done = await assistant.summarize(body.space_id, body.doc_id, body.language, body.force)
    return SummarizeResponse(
        doc_id=done.doc_id,
        summary=done.summary,
        language=done.language,
        cached=done.cached,
        strategy=done.strategy,
        timing=done.timing,
        usage=done.usage,
        sentences=done.sentences,
    )


@router.post("/summarize-stream", responses={200: _STREAM_SCHEMA, **_ERRORS})
async def summarize_stream(
    body: SummarizeRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> HeldEventSourceResponse:
    """Server-sent events: `start` (before any LLM work), `processing` per map/reduce step with an
    ETA, `summary` deltas as the final pass writes, then `complete` — or `error`. Disconnecting
    cancels the LLM work unless a background job needs the same summary."""
    access.check_space(body.space_id)
    await record(request, access, "summarize", space_id=body.space_id, doc_id=body.doc_id)
    permit = assistant.admit("answer", access.holder)
    try:
        following = await assistant.summary_events(body.space_id, body.doc_id, body.language, body.force)
    except BaseException:
        permit.release()
        raise

    async def events() -> AsyncIterator[dict[str, str]]:
        async with following as stream:
            async for ev in stream:
                yield encode(ev)
                if ev.terminal:
                    return

    return HeldEventSourceResponse(permit, events())
