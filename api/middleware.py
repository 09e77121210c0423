"""Request logging (docs/LOGS.md): a line the moment a request arrives, a line with the total
time when its response (streamed or not) has been sent, and a request id on every line in
between. Pure ASGI, so streaming responses and client disconnects pass through. A client's
`X-Request-ID` is kept when it is a plain token (letters, digits, `._:-`, at most 64); any other
value is replaced by a fresh id.

Every response also carries `Server-Timing: app;dur=<ms>`: the service's own time until the
response headers left (for a streamed response, its time to first byte), so clients and
`bench/` can tell server time from network and client time."""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docassist.pipelines.logs import clock, event, request_id_var

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"")
        rid = given.decode("ascii") if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:12]
        token = request_id_var.set(rid)
        method, path = scope["method"], scope["path"]
        quiet = path == "/health"
        started = time.perf_counter()
        if not quiet:
            event(
                "🌐 " + "*" * 40,
                f"[HTTP REQUEST ⬇️ ] {method} {path}",
                f"⏰ Request time: {clock()}",
                method=method,
                path=path,
            )
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                dur = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
                message.setdefault("headers", []).extend(
                    [(b"x-request-id", rid.encode()), (b"server-timing", dur.encode())]
                )
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if scope.get("state", {}).get("client_left"):
                status = 499  # nginx's "client closed request": nothing was sent
            if not quiet or status >= 500:
                total = time.perf_counter() - started
                event(
                    "[HTTP RESPONSE ⬆️ ]",
                    f"{method} {path} → {status}",
                    f"⏱️  Total HTTP time: {total:.3f}s",
                    method=method,
                    path=path,
                    status=status,
                    total_s=round(total, 4),
                )
            request_id_var.reset(token)


class JsonBodyMiddleware:
    """Read a POST body as JSON when the client did not say it was JSON.

    `curl -d '{...}'` sends `application/x-www-form-urlencoded`; the usual way to try
    the API calls `/ask`, `/summarize` and `/summarize-stream` exactly that way. Every route but
    `/ingest` takes JSON only, so the header is corrected; a body that is not JSON still gets
    the usual 422."""

    def __init__(self, app: ASGIApp, multipart_paths: tuple[str, ...] = ("/ingest",)) -> None:
        self.app, self.multipart_paths = app, multipart_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] not in self.multipart_paths:
            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-type"]
            original = dict(scope.get("headers", [])).get(b"content-type", b"")
            if not original or original.startswith(b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


class BrowserHeadersMiddleware:
    """Headers that keep a browser from turning the service's answers against its users, on every
    response: a Content-Security-Policy that lets a page load and call only this origin (the web
    page and `/docs` ship every script and style sheet they use; nothing inline, nothing from
    elsewhere), no MIME sniffing, no framing by other sites, no referrer leaving the origin."""

    HEADERS: tuple[tuple[bytes, bytes], ...] = (
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            b"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(self.HEADERS)
            await send(message)

        await self.app(scope, receive, send_wrapper)
