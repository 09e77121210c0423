"""A request whose client has gone is cancelled: its LLM slot, its place in a queue and its
threads go to the requests someone still waits for.

Pure ASGI. Once the route has read its body (at once, for a request without one), a watcher
owns `receive` and waits for `http.disconnect`; the route's own later reads (sse-starlette
listens for the disconnect too) get that same message from the watcher. A disconnect while the
response is not finished cancels the route's task. What needs the work beyond the request keeps
it: a summary run pinned by a background job is only unfollowed (`SummaryService.following`),
and a started upload stops at its next step (`Assistant.ingest`).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docassist.pipelines.logs import event


def _declares_body(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or [])
    return headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read, gone = asyncio.Event(), asyncio.Event()
        early: list[Message] = []  # the empty body of a request without one, read by the watcher
        with_body = _declares_body(scope)

        async def app_receive() -> Message:
            if not with_body:
                await body_read.wait()
            if early:
                return early.pop()
            if body_read.is_set():
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def watch() -> None:
            if not with_body:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return
                early.append(message)
                body_read.set()
            await body_read.wait()
            while not gone.is_set():
                if (await receive())["type"] == "http.disconnect":
                    gone.set()

        answered = False

        async def app_send(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True  # uvicorn reports a disconnect from now on: it is not the client leaving

        work = asyncio.ensure_future(self.app(scope, app_receive, app_send))
        watcher = asyncio.ensure_future(watch())
        left = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({work, left}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and not answered:
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                scope.setdefault("state", {})["client_left"] = True  # the request log records 499
                event(
                    "[HTTP] Client left",
                    f"{scope['method']} {scope['path']}: cancelled before its answer was sent",
                    method=scope["method"],
                    path=scope["path"],
                )
                return
            await work
        finally:
            for task in (work, watcher, left):
                task.cancel()
