"""The health report, kept current in the background and never queued behind work.

A task refreshes the report every `interval_s` (5 s: each refresh asks every LLM server, which
logs it); a request asks for one whose checks started at most `max_age_s` before it, and joins a
refresh in flight that qualifies or starts one (at most two run at once). Its checks run on the
health lane's own threads, so a busy service still answers; a check that hangs makes the request
answer, after `wait_s` (longer than an LLM probe's 5 s timeout), with the last finished report
rather than wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from docassist.pipelines.health import HealthReport
from docassist.pipelines.logs import event

REFRESH_S = 5


class HealthMonitor:
    def __init__(
        self, check: Callable[[], Awaitable[HealthReport]], interval_s: float = REFRESH_S, wait_s: float = 6.0
    ) -> None:
        self.check, self.interval_s, self.wait_s = check, interval_s, wait_s
        self.latest: HealthReport | None = None
        self.latest_at = float("-inf")  # when the latest report's checks started
        self._flights: list[asyncio.Task[None]] = []
        self._flight_at = float("-inf")
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start refreshing; the first report is awaited by whoever asks first, not by the start
        (a hung LLM server takes its probe timeout to report)."""
        self._newest(time.monotonic())
        self._loop_task = asyncio.create_task(self._keep_current(), name="health-monitor")

    async def stop(self) -> None:
        for task in (self._loop_task, *self._flights):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def report(self, max_age_s: float = 0.1) -> HealthReport:
        """A report whose checks started at most `max_age_s` before this call, or after `wait_s`
        the latest one there is. The first report is waited for however long it takes."""
        asked = time.monotonic()
        while self.latest is None:  # nothing to fall back on yet
            await asyncio.shield(self._newest(asked - max_age_s))
        try:
            async with asyncio.timeout(self.wait_s):
                while self.latest_at < asked - max_age_s:
                    await asyncio.shield(self._newest(asked - max_age_s))
        except TimeoutError:
            pass  # a check hangs: the last report it finished
        assert self.latest is not None
        return self.latest

    def _newest(self, since: float) -> asyncio.Task[None]:
        """The refresh in flight that started at `since` or later, or a new one — unless two
        already run (a slow check must not pile refreshes up): then the newest of them."""
        self._flights = [f for f in self._flights if not f.done()]
        if self._flights and (self._flight_at >= since or len(self._flights) >= 2):
            return self._flights[-1]
        self._flight_at = time.monotonic()
        self._flights.append(asyncio.create_task(self._refresh(self._flight_at), name="health-refresh"))
        return self._flights[-1]

    async def _refresh(self, started: float) -> None:
        report = await self.check()
        if started > self.latest_at:  # an older refresh finishing late does not overwrite a newer one
            self.latest, self.latest_at = report, started

    async def _keep_current(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.report(max_age_s=self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again; requests get the last report meanwhile
                event("[HEALTH] Refresh failed", f"{type(exc).__name__}: {exc}", level=logging.WARNING)
