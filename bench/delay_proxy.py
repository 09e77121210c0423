"""A TCP port that forwards to another one `delay_s` later in each direction: a server across a
network, on one machine. Each chunk is held for the delay before it is passed on, in order, so a
request–answer protocol (LDAP) sees one round trip of 2 × `delay_s` per exchange."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from docassist.pipelines.llm.llama_server import free_port


class DelayProxy:
    def __init__(self, target_host: str, target_port: int, delay_s: float) -> None:
        self.target, self.delay_s, self.port = (target_host, target_port), delay_s, free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        ).result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    await asyncio.sleep(self.delay_s)
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
