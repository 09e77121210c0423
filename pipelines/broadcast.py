"""The latest state of each job this process runs, pushed to whoever follows it here at once.

A runner writes a job's progress to the database and publishes the same state here; a follower in
this process (`/jobs/{id}/events`) takes it from here, with no database read. Publishing is
thread-safe (an upload's progress is written from the uploads lane's threads): each follower gets
the states on its own event loop, in the order they were published.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
KEPT = 64  # states a slow follower may fall behind by; older ones are dropped (the latest matters)


class Follower(Generic[T]):
    """One follower of a job: the states published since it last took one, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._states: deque[T] = deque(maxlen=KEPT)
        self._woken = asyncio.Event()

    def push(self, state: T | None) -> None:
        """From any thread; `None` wakes the follower without a state (the job stopped running here)."""
        with contextlib.suppress(RuntimeError):  # its loop has closed: nobody follows any more
            self.loop.call_soon_threadsafe(self._arrive, state)

    def _arrive(self, state: T | None) -> None:
        if state is not None:
            self._states.append(state)
        self._woken.set()

    async def next(self, timeout_s: float) -> T | None:
        """The next state published; None after `timeout_s` without one, or once the job stopped
        running here without publishing how it ended."""
        if not self._states:
            self._woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout_s)
        return self._states.popleft() if self._states else None


class Broadcast(Generic[T]):
    """Jobs by id: the latest state of those running in this process, and their followers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, T] = {}
        self._followers: dict[str, set[Follower[T]]] = {}

    def runs(self, key: str) -> bool:
        """Whether this process runs the job: its states arrive here as they are written."""
        with self._lock:
            return key in self._latest

    def publish(self, key: str, state: T) -> None:
        """The job runs here and is now `state` (as written to the database)."""
        with self._lock:  # pushed under the lock: every follower gets the states in one order
            self._latest[key] = state
            for follower in self._followers.get(key, ()):
                follower.push(state)

    def end(self, key: str) -> None:
        """The job no longer runs here; a follower that did not get how it ended reads it elsewhere."""
        with self._lock:
            self._latest.pop(key, None)
            for follower in self._followers.get(key, ()):
                follower.push(None)

    @contextlib.contextmanager
    def follow(self, key: str) -> Iterator[Follower[T]]:
        """A follower of the job, on the running loop, first given its latest state if it runs here."""
        follower: Follower[T] = Follower(asyncio.get_running_loop())
        with self._lock:
            self._followers.setdefault(key, set()).add(follower)
            if key in self._latest:
                follower.push(self._latest[key])
        try:
            yield follower
        finally:
            with self._lock:
                followers = self._followers.get(key, set())
                followers.discard(follower)
                if not followers:
                    self._followers.pop(key, None)
