"""Connections that do not finish their request headers in time are closed, and requests past
the connection cap get a 503 that says when to come back.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`), but not how long a client may
take to send its headers: 50 connections sending theirs a byte at a time stayed open for as long
as they liked. The protocol `serve` runs (uvicorn's httptools one, bounded) starts a deadline when a
connection opens and whenever a new request starts arriving on it, and closes the connection when
its headers are not complete by then (`HEADER_TIMEOUT_S`). Headers are complete when uvicorn has built the
request's cycle.

The cap (`MAX_CONNECTIONS`) is uvicorn's `limit_concurrency` test — open connections or running
requests at the cap — but its answer is the service's: the error envelope with `Retry-After`, as
every other 503, where uvicorn's own is a bare text/plain "Service Unavailable".

Load shedding (`MAX_IN_FLIGHT`, half of it per caller while others ask: `admission.InFlight`):
past it, a request is refused with 503 `busy` and `Retry-After` before any middleware runs, so a
process offered more than it can serve answers the excess at once and keeps the latency of what it
admits (bench/load.py measures both).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from docassist.api.auth import SESSION_COOKIE
from docassist.api.errors import BUSY, BUSY_RETRY_S, TOO_MANY_CONNECTIONS, UNAVAILABLE_RETRY_S, envelope
from docassist.pipelines import metrics
from docassist.pipelines.admission import InFlight
from docassist.pipelines.logs import event


class HeaderDeadline:
    """Mixed into a uvicorn HTTP protocol. `header_timeout_s` is set from the settings at start
    (`configure`); uvicorn builds a protocol per connection from the class alone."""

    header_timeout_s: float = 10.0
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _deadline: asyncio.TimerHandle | None = None
    _timed_cycle: Any = None
    _awaiting_headers = True

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._arm()
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not None and self.cycle is not self._timed_cycle:
            self._timed_cycle, self._awaiting_headers = self.cycle, False
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._awaiting_headers = True  # the next request's deadline starts with its first byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


# The request lines a load balancer's probe sends: answered past the cap too, so a service whose
# connections are all taken is not also reported dead (health reads a report kept in the background).
_HEALTH = (b"GET /health ", b"GET /health?", b"HEAD /health ", b"HEAD /health?")
# The page's own files: a browser asks for several at once, and none costs more than a file read.
_PAGE = (b"GET / ", b"GET /static/", b"GET /docs ")


class ConnectionCap:
    """Mixed into a uvicorn HTTP protocol: a request that arrives while `max_connections`
    connections are open, or as many requests run, is answered by `over_capacity` instead of the
    service — unless it is `GET /health`; one that arrives while `MAX_IN_FLIGHT` recent requests
    run is shed by `busy` (`InFlight`) — unless it is health or the page's own files. The choice is
    made once its headers are parsed, before uvicorn hands it to an app, from its method and target
    as the parser read them (a request line in pieces, or after a body left unread, is the same)."""

    max_connections: int | None = None
    in_flight: InFlight | None = None
    app: Any
    connections: set[Any]
    tasks: set[Any]
    _service: Any = None
    parser: Any
    url: bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._service = self.app

    def on_headers_complete(self) -> None:
        line = self.parser.get_method() + b" " + self.url + b" "
        cap = self.max_connections
        over = cap is not None and (len(self.connections) > cap or len(self.tasks) >= cap)
        health = line.startswith(_HEALTH)
        unbounded = health or line.startswith(_PAGE)
        self.app = over_capacity if over and not health else self._service if unbounded else self._admitted
        super().on_headers_complete()  # type: ignore[misc]

    async def _admitted(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The service, unless `MAX_IN_FLIGHT` recent requests run, or half of them the same
        caller's (`busy` then). An upload is not counted: its places are bounded, and shared
        between spaces, by the upload lane."""
        gate = self.in_flight
        if gate is None or _upload(scope):
            await self._service(scope, receive, send)
            return
        ticket = gate.admit(_caller(scope))
        if ticket is None:
            await busy(scope, send)
            return
        try:
            await self._service(scope, receive, send)
        finally:
            gate.done(ticket)


async def over_capacity(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """503 with `Retry-After` in the error envelope; the connection is closed (its body unread)."""
    cap = ConnectionCap.max_connections
    body = json.dumps(
        envelope(
            TOO_MANY_CONNECTIONS,
            f"the service is serving its most connections or requests at once ({cap}, MAX_CONNECTIONS); "
            f"retry in {UNAVAILABLE_RETRY_S}s",
            {"max_connections": cap},
        )
    ).encode()
    event("[WARN] over the connection cap", f"{scope.get('method')} {scope.get('path')}", max_connections=cap)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(UNAVAILABLE_RETRY_S).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _caller(scope: dict[str, Any]) -> str:
    """Who sends the request, as far as its bytes say before any check: the credential it carries
    (an API key, a bearer token, the session cookie), checked later by the guard; "" for none."""
    for name, value in scope.get("headers", []):
        if name in (b"x-api-key", b"authorization"):
            return value.decode("latin-1")
        if name == b"cookie" and _SESSION in value:
            return value.decode("latin-1")
    return ""


def _upload(scope: dict[str, Any]) -> bool:
    return any(k == b"content-type" and v.startswith(b"multipart/") for k, v in scope.get("headers", []))


_SESSION = f"{SESSION_COOKIE}=".encode()
_SKIPPED_BODY_BYTES = 64 * 1024  # a shed request's body up to this is read past, not cut off


async def busy(scope: dict[str, Any], send: Any) -> None:
    """503 `busy` with `Retry-After`, sent before any middleware runs: a refusal must cost far less
    than the answer it saves. A small body left unread is skipped by the parser as it arrives, so
    the connection stays open; a large or chunked one closes it. One log line a second at most says
    how many were shed."""
    gate = ConnectionCap.in_flight
    limit = gate.limit if gate is not None else 0
    metrics.request_shed()
    shed = gate.unreported() if gate is not None else None
    if shed is not None:
        event(
            "[ADMISSION] Busy: requests shed",
            f"{shed} since the last line; {limit} recent requests running (MAX_IN_FLIGHT)",
            shed=shed,
            max_in_flight=limit,
        )
    body = json.dumps(
        envelope(
            BUSY,
            f"the service is running its most requests at once ({limit}, MAX_IN_FLIGHT); retry in {BUSY_RETRY_S}s",
            {"max_in_flight": limit},
        )
    ).encode()
    headers_in = dict(scope.get("headers", []))
    length = headers_in.get(b"content-length", b"0")
    large = b"transfer-encoding" in headers_in or not length.isdigit() or int(length) > _SKIPPED_BODY_BYTES
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(BUSY_RETRY_S).encode()),
        *([(b"connection", b"close")] if large else []),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BoundedHttpToolsProtocol(ConnectionCap, HeaderDeadline, HttpToolsProtocol):
    pass


def configure(header_timeout_s: float, max_connections: int, max_in_flight: int) -> None:
    HeaderDeadline.header_timeout_s = header_timeout_s
    ConnectionCap.max_connections = max_connections
    ConnectionCap.in_flight = InFlight(max_in_flight)


def uvicorn_options(keep_alive_s: float) -> dict[str, Any]:
    """What `docassist serve` gives uvicorn: the bounded protocol (header deadline and connection
    cap, set by `configure`) and the keep-alive timeout (`KEEP_ALIVE_S`)."""
    return {"http": BoundedHttpToolsProtocol, "timeout_keep_alive": keep_alive_s}
