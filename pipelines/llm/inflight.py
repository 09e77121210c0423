"""The calls running on one endpoint now, and when each last made progress.

Every call streams, so each token (or reasoning token) is a sign of life. `/health` reports
an endpoint that is busy with our calls from this record instead of asking it — a llama.cpp
server answers one request at a time, so a question would wait for the whole generation — and
an endpoint whose oldest call has made no progress for longer than the stall timeout is
stalled: unhealthy, and restarted when docassist runs it.

A call cancelled because its client left is also remembered for a while: llama-cpp-python's
server reads a prompt it has started to its end before it notices the hang-up, so for a time it
is busy with work that is no longer ours, and a probe that it does not answer then is not a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Call:
    purpose: str
    started: float = field(default_factory=time.monotonic)
    last_progress: float = field(default_factory=time.monotonic)
    tokens: int = 0

    def progress(self) -> None:
        self.tokens += 1
        self.last_progress = time.monotonic()


@dataclass(frozen=True)
class Activity:
    """What `/health` says about an endpoint busy with our calls."""

    calls: int
    oldest_call_s: float
    since_progress_s: float

    def stalled(self, timeout_s: float) -> bool:
        return self.calls > 0 and self.since_progress_s > timeout_s


class InFlight:
    def __init__(self) -> None:
        self._calls: dict[int, Call] = {}
        self._ids = itertools.count()
        self.abandoned_at = float("-inf")  # when a call was last cancelled mid-way

    @contextlib.contextmanager
    def track(self, purpose: str) -> Iterator[Call]:
        call_id, call = next(self._ids), Call(purpose)
        self._calls[call_id] = call
        try:
            yield call
        except (asyncio.CancelledError, GeneratorExit):
            self.abandoned_at = time.monotonic()
            raise
        finally:
            self._calls.pop(call_id, None)

    def abandoned_within(self, seconds: float) -> bool:
        return time.monotonic() - self.abandoned_at < seconds

    def __len__(self) -> int:
        return len(self._calls)

    def activity(self) -> Activity | None:
        """None when idle; else the number of calls, the oldest call's age and the longest silence."""
        if not self._calls:
            return None
        now = time.monotonic()
        calls = list(self._calls.values())
        return Activity(
            calls=len(calls),
            oldest_call_s=round(now - min(c.started for c in calls), 1),
            since_progress_s=round(now - min(c.last_progress for c in calls), 1),
        )
