"""Summaries of whole documents: one answer, or a stream of server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from docassist.api.deps import AccessDep, RuntimeDep
from docassist.api.schemas import ErrorResponse, SummarizeRequest, SummarizeResponse

router = APIRouter(tags=["summaries"])
_ERRORS = {code: {"model": ErrorResponse} for code in (404, 422, 503)}


@router.post("/summarize", response_model=SummarizeResponse, responses=_ERRORS)
async def summarize(body: SummarizeRequest, runtime: RuntimeDep, access: AccessDep) -> SummarizeResponse:
    """The whole document's summary in its language (or `language`): one LLM call when it fits
    the model's budget, map-reduce otherwise. A cached summary comes back with `cached: true`."""
    access.check_space(body.space_id)
    record = runtime.document(body.space_id, body.doc_id)
    data = await runtime.summaries.summarize(record, body.language, body.force)
    return SummarizeResponse(
        doc_id=record.doc_id,
        summary=data["summary"],
        language=data["language"],
        cached=data["cached"],
        strategy=data["strategy"],
        timing=data["timing"],
        usage=data["usage"],
    )


@router.post("/summarize-stream", responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS})
async def summarize_stream(body: SummarizeRequest, runtime: RuntimeDep, access: AccessDep) -> EventSourceResponse:
    """Server-sent events: `start` (before any LLM work), `processing` per map/reduce step with an
    ETA, `summary` deltas as the final pass writes, then `complete` — or `error`. Disconnecting
    cancels the LLM work unless a background job needs the same summary."""
    access.check_space(body.space_id)
    record = runtime.document(body.space_id, body.doc_id)
    flight = runtime.summaries.start(record, body.language, body.force)

    async def events() -> AsyncIterator[dict[str, str]]:
        async with runtime.summaries.following(flight) as stream:
            async for ev in stream:
                yield {"event": ev.name, "data": json.dumps(ev.data, ensure_ascii=False)}
                if ev.name in ("complete", "error"):
                    return

    return EventSourceResponse(events(), ping=10, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
