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
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from docassist.api.errors import TOO_MANY_CONNECTIONS, UNAVAILABLE_RETRY_S, envelope
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
_HEAD_BYTES = max(len(line) for line in _HEALTH)


class ConnectionCap:
    """Mixed into a uvicorn HTTP protocol: a request that arrives while `max_connections`
    connections are open, or as many requests run, is answered by `over_capacity` instead of the
    service — unless it is `GET /health`. The choice is made as its bytes arrive, before uvicorn
    hands it to an app, from the request line's first bytes (kept until the response is sent, so a
    line that arrives in pieces is still recognised)."""

    max_connections: int | None = None
    app: Any
    connections: set[Any]
    tasks: set[Any]
    _service: Any = None
    _head = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._service = self.app

    def data_received(self, data: bytes) -> None:
        if len(self._head) < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - len(self._head)]
        cap = self.max_connections
        over = cap is not None and (len(self.connections) > cap or len(self.tasks) >= cap)
        self.app = over_capacity if over and not self._head.startswith(_HEALTH) else self._service
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._head = b""  # the next request on this connection starts its own line


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


class BoundedHttpToolsProtocol(ConnectionCap, HeaderDeadline, HttpToolsProtocol):
    pass


def configure(header_timeout_s: float, max_connections: int) -> None:
    HeaderDeadline.header_timeout_s = header_timeout_s
    ConnectionCap.max_connections = max_connections


def uvicorn_options(keep_alive_s: float) -> dict[str, Any]:
    """What `docassist serve` gives uvicorn: the bounded protocol (header deadline and connection
    cap, set by `configure`) and the keep-alive timeout (`KEEP_ALIVE_S`)."""
    return {"http": BoundedHttpToolsProtocol, "timeout_keep_alive": keep_alive_s}
