"""Connections that do not finish their request headers in time are closed.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and how many it serves
(`limit_concurrency`), but not how long a client may take to send its headers: 50 connections
sending theirs a byte at a time stayed open for as long as they liked. These protocols (one per
uvicorn parser) start a deadline when a connection opens and whenever a new request starts
arriving on it, and close the connection when its headers are not complete by then
(`HEADER_TIMEOUT_S`). Headers are complete when uvicorn has built the request's cycle.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


class BoundedHttpToolsProtocol(HeaderDeadline, HttpToolsProtocol):
    pass


class BoundedH11Protocol(HeaderDeadline, H11Protocol):
    pass


def configure(header_timeout_s: float) -> None:
    HeaderDeadline.header_timeout_s = header_timeout_s


def uvicorn_options(max_connections: int, keep_alive_s: float) -> dict[str, Any]:
    """What `docassist serve` gives uvicorn: the bounded protocol, the connection cap
    (`MAX_CONNECTIONS`: past it, 503 at once) and the keep-alive timeout (`KEEP_ALIVE_S`)."""
    return {"http": BoundedHttpToolsProtocol, "limit_concurrency": max_connections, "timeout_keep_alive": keep_alive_s}
