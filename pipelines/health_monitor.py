"""The health report, kept current in the background and never queued behind work.

A task refreshes the report every `interval_s`; a request asks for one no older than `max_age_s`
and joins the refresh in flight (there is at most one) or starts the next. Its checks run on
the health lane's own threads, so a busy service still answers; a check that hangs makes the
request answer, after `wait_s`, with the last finished report rather than wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from docassist.pipelines.health import HealthReport
from docassist.pipelines.logs import event


class HealthMonitor:
    def __init__(
        self, check: Callable[[], Awaitable[HealthReport]], interval_s: float = 1.0, wait_s: float = 3.0
    ) -> None:
        self.check, self.interval_s, self.wait_s = check, interval_s, wait_s
        self.latest: HealthReport | None = None
        self.latest_at = float("-inf")  # when the latest report's checks started
        self._flight: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.report(max_age_s=self.interval_s)
        self._loop_task = asyncio.create_task(self._keep_current(), name="health-monitor")

    async def stop(self) -> None:
        for task in (self._loop_task, self._flight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def report(self, max_age_s: float = 0.1) -> HealthReport:
        """A report whose checks started at most `max_age_s` before this call, or after `wait_s`
        the latest one there is."""
        asked = time.monotonic()
        try:
            async with asyncio.timeout(self.wait_s):
                while self.latest is None or self.latest_at < asked - max_age_s:
                    if self._flight is None or self._flight.done():
                        self._flight = asyncio.create_task(self._refresh(), name="health-refresh")
                    await asyncio.shield(self._flight)
        except TimeoutError:
            if self.latest is None:
                raise
        return self.latest

    async def _refresh(self) -> None:
        started = time.monotonic()
        report = await self.check()
        self.latest, self.latest_at = report, started

    async def _keep_current(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.report(max_age_s=self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again; requests get the last report meanwhile
                event("[HEALTH] Refresh failed", f"{type(exc).__name__}: {exc}", level=30)
