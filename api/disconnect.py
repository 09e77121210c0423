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


class _Watched:
    """One request's channel, watched for its client leaving: the app reads its body as usual;
    once it is read (or there is none), a watcher goes on reading and sets `gone` at a disconnect."""

    def __init__(self, receive: Receive, send: Send, with_body: bool) -> None:
        self._receive, self._send, self.with_body = receive, send, with_body
        self.body_read, self.gone = asyncio.Event(), asyncio.Event()
        self.early: list[Message] = []  # the empty body of a request without one, read by the watcher
        self.answered = False

    async def receive(self) -> Message:
        if not self.with_body:
            await self.body_read.wait()
        if self.early:
            return self.early.pop()
        if self.body_read.is_set():
            await self.gone.wait()
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.gone.set()
        elif not message.get("more_body", False):
            self.body_read.set()
        return message

    async def watch(self) -> None:
        if not self.with_body:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return
            self.early.append(message)
            self.body_read.set()
        await self.body_read.wait()
        while not self.gone.is_set():
            if (await self._receive())["type"] == "http.disconnect":
                self.gone.set()

    async def send(self, message: Message) -> None:
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.answered = True  # uvicorn reports a disconnect from now on: it is not the client leaving


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = _Watched(receive, send, _declares_body(scope))
        work = asyncio.ensure_future(self.app(scope, conn.receive, conn.send))
        watcher = asyncio.ensure_future(conn.watch())
        left = asyncio.ensure_future(conn.gone.wait())
        try:
            await asyncio.wait({work, left}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and not conn.answered:
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
