"""A fair share of the uploads lane between spaces.

The uploads lane admits `UPLOAD_WORKERS + UPLOAD_QUEUE` uploads. First come, first served, one
space's burst of slow uploads took every place — another space got 429 `upload_queue_full` until
they were deleted — and, queued in order, delayed another space's single upload behind the whole
burst. Here a space holds at most `UPLOADS_PER_SPACE` of the places (past them 429
`space_upload_queue_full`), and uploads wait here rather than in the lane's executor: each time a
worker is free, the waiting space with the fewest uploads running goes next, ties to the space
served longest ago — round-robin between spaces, in order within one. A space runs at most
`UPLOAD_WORKERS - 1` uploads at once (one with a single worker): the last worker is left for
another space, so a one-line note does not wait for a bulk import's document to end. Alone, a
space loses little by it: its uploads' passages are embedded one batch at a time by the one
embedder process whichever worker sends them.

The share is per space, not per key: a space is the tenant — its documents, its searches, what a
key is granted — and an upload fills a space's data. The keys of one team share their space's
share; a key for every space is held to each space's share where it uploads.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from docassist.pipelines import metrics
from docassist.pipelines.errors import SpaceUploadQueueFull, UploadQueueFull
from docassist.pipelines.lanes import Lane

T = TypeVar("T")


def default_share(places: int) -> int:
    """Half the places, at least one: one space never takes the whole queue while it has two."""
    return max(1, places // 2)


@dataclass(eq=False)
class _Upload:
    """An admitted upload: waiting here until a worker is free, then running on the lane."""

    space_id: str
    call: Callable[[], Any]
    future: asyncio.Future[Any]
    started: bool = False


@dataclass
class _Spaces:
    """Per space: places held (running or waiting), uploads running, and when one last started."""

    held: Counter[str] = field(default_factory=Counter)
    running: Counter[str] = field(default_factory=Counter)
    last_started: dict[str, int] = field(default_factory=dict)

    def release(self, space_id: str, was_running: bool) -> None:
        self.held[space_id] -= 1
        if was_running:
            self.running[space_id] -= 1
        for counts in (self.held, self.running):
            if counts[space_id] <= 0:
                del counts[space_id]
        if space_id not in self.held:
            self.last_started.pop(space_id, None)


class UploadQueue:
    """The uploads lane's places, shared fairly between spaces."""

    def __init__(self, lane: Lane, per_space: int | None = None) -> None:
        self.lane = lane
        self.places = lane.workers + (lane.queue or 0)
        self.per_space = min(self.places, per_space or default_share(self.places))
        self.running_per_space = max(1, lane.workers - 1)
        self._spaces = _Spaces()
        self._waiting: dict[str, deque[_Upload]] = {}
        self._starts = 0

    @property
    def held(self) -> int:
        return self._spaces.held.total()

    def check(self, space_id: str) -> None:
        """`UploadQueueFull` when every place is held, `SpaceUploadQueueFull` when the space holds its share."""
        retry = self.lane.retry_after_s
        if self.held >= self.places:
            raise UploadQueueFull(
                f"{self.held} uploads are being processed or queued, the most UPLOAD_WORKERS + UPLOAD_QUEUE "
                f"admit ({self.places}); retry in {retry}s",
                retry_after_s=retry,
                workers=self.lane.workers,
                queue=self.lane.queue,
            )
        if self._spaces.held[space_id] >= self.per_space:
            raise SpaceUploadQueueFull(
                f"space {space_id!r} has {self._spaces.held[space_id]} uploads being processed or queued, its share "
                f"of the {self.places} places (UPLOADS_PER_SPACE); the others are kept for other spaces; "
                f"retry in {retry}s",
                retry_after_s=retry,
                per_space=self.per_space,
                places=self.places,
            )

    def submit(self, space_id: str, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """`fn(*args)` on the lane once the space's turn comes, admitted now or refused at once; its
        future. Cancelling the future drops an upload still waiting; one that started runs on and
        holds its place until it ends (callers that can stop it early pass it a flag)."""
        self.check(space_id)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        upload = _Upload(space_id, functools.partial(fn, *args), future)
        self._spaces.held[space_id] += 1
        self._waiting.setdefault(space_id, deque()).append(upload)
        future.add_done_callback(functools.partial(self._dropped, upload))
        self._start_waiting()
        return future

    def _start_waiting(self) -> None:
        """Start waiting uploads while workers are free, the fairest space's first."""
        while self._spaces.running.total() < self.lane.workers:
            space_id = self._next_space()
            if space_id is None:
                break
            upload = self._take(space_id)
            upload.started = True
            self._starts += 1
            self._spaces.running[upload.space_id] += 1
            self._spaces.last_started[upload.space_id] = self._starts
            # the lane's own count is released before this callback runs (both are scheduled on
            # the loop in that order), so it always has a free worker here
            self.lane.submit(upload.call).add_done_callback(functools.partial(self._ended, upload))
        self._report()

    def _next_space(self) -> str | None:
        """The waiting space with the fewest uploads running, below `running_per_space`; of those,
        the one started longest ago. None when no waiting space may start one."""
        spaces = self._spaces
        ready = [s for s in self._waiting if spaces.running[s] < self.running_per_space]
        return min(ready, key=lambda s: (spaces.running[s], spaces.last_started.get(s, 0)), default=None)

    def _take(self, space_id: str) -> _Upload:
        queued = self._waiting[space_id]
        upload = queued.popleft()
        if not queued:
            del self._waiting[space_id]
        return upload

    def _dropped(self, upload: _Upload, future: asyncio.Future[Any]) -> None:
        """A waiting upload whose caller cancelled it gives its place back; a started one keeps it."""
        if upload.started or not future.cancelled():
            return
        queued = self._waiting.get(upload.space_id)
        if queued is None or upload not in queued:
            return
        queued.remove(upload)
        if not queued:
            del self._waiting[upload.space_id]
        self._spaces.release(upload.space_id, was_running=False)
        self._report()

    def _ended(self, upload: _Upload, call: asyncio.Future[Any]) -> None:
        self._spaces.release(upload.space_id, was_running=True)
        error = None if call.cancelled() else call.exception()  # read, so the lane's future never warns
        if not upload.future.done():
            if call.cancelled():
                upload.future.cancel()
            elif error is not None:
                upload.future.set_exception(error)
            else:
                upload.future.set_result(call.result())
        self._start_waiting()

    def _report(self) -> None:
        metrics.lane_load(self.lane.name, self.held, self.lane.workers)
