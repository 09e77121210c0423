"""Bodies must arrive in time: a client that declares a body and sends it slowly, or not at all,
gets 408 and its connection closed, instead of holding it (and a request) open for as long as
it likes.

Pure ASGI around `receive`: each read of the body waits at most `idle_s` (`BODY_IDLE_TIMEOUT_S`),
and the whole body must arrive within `total_s` (`BODY_TIMEOUT_S`) of the first read. Raised as
an HTTP exception from `receive`, so FastAPI's body parsing passes it on untouched (as with
`guard.BodyTooLarge`) and the error handler answers `request_timeout`.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTimedOut(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(408, message)


class BodyDeadline:
    def __init__(self, app: ASGIApp, total_s: float, idle_s: float) -> None:
        self.app, self.total_s, self.idle_s = app, total_s, idle_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started: float | None = None
        complete = False

        async def timed() -> Message:
            nonlocal started, complete
            if complete:
                return await receive()
            now = loop.time()
            started = now if started is None else started
            left = self.total_s - (now - started)
            if left <= 0:
                raise BodyTimedOut(f"the request body did not arrive within BODY_TIMEOUT_S ({self.total_s:g}s)")
            try:
                message = await asyncio.wait_for(receive(), min(self.idle_s, left))
            except TimeoutError:
                if left <= self.idle_s:
                    raise BodyTimedOut(
                        f"the request body did not arrive within BODY_TIMEOUT_S ({self.total_s:g}s)"
                    ) from None
                raise BodyTimedOut(
                    f"no part of the request body arrived for BODY_IDLE_TIMEOUT_S ({self.idle_s:g}s)"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed, send)
