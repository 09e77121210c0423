"""A server-sent event response that holds a per-key place until the stream has ended.

The place must outlive the route (which returns as soon as the response is built) and be
released however the stream ends — finished, failed, or its client gone before the first
event, when the events' generator never even starts. The response's own call is the one thing
that runs in every case."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse
from starlette.types import Receive, Scope, Send

from docassist.pipelines.admission import Permit

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class HeldEventSourceResponse(EventSourceResponse):
    def __init__(self, permit: Permit, events: AsyncIterator[dict[str, str]]) -> None:
        super().__init__(events, ping=10, headers=SSE_HEADERS)
        self.permit = permit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.permit.release()
