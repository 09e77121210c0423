"""The real PostgreSQL and Redis servers these machines run (127.0.0.1:5432, trust auth; 127.0.0.1:6379),
given to a test as a fresh database and a flushed Redis database, and a TCP proxy in front of either
that a test can cut and restore to simulate an outage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading

from docassist.bench import service as harness

POSTGRES = os.environ.get("TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("TEST_REDIS", "redis://127.0.0.1:6379")
# one Redis database per pytest-xdist worker (gw0 → 7, gw1 → 8, …): a test flushes its own only
REDIS_TEST_DB = 7 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def fresh_postgres_database() -> contextlib.AbstractContextManager[str]:
    """A new, empty PostgreSQL database; dropped afterwards. Yields its URL."""
    return harness.fresh_postgres_database(POSTGRES, "docassist_test")


def fresh_redis() -> contextlib.AbstractContextManager[str]:
    """This worker's Redis database (7 for the first), flushed before and after. Yields its URL."""
    return harness.fresh_redis(f"{REDIS}/{REDIS_TEST_DB}")


class TcpProxy:
    """Forwards a local port to `target` in a thread. `cut()` drops every connection and refuses new
    ones (the server seems down); `restore()` accepts again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.restore()

    def url(self, scheme_and_auth: str, path: str = "") -> str:
        return f"{scheme_and_auth}127.0.0.1:{self.port}{path}"

    def _call(self, coro) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def restore(self) -> None:
        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

        self._call(start())

    def cut(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._call(stop())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
