"""Thread lanes: each kind of blocking work runs on its own bounded executor.

The event loop's default executor has min(32, cores + 4) threads — six on two cores — and
`asyncio.to_thread` shares it with everything else. Six uploads, each holding a thread for its
whole extract-and-embed, used to take them all, and `/health`, `/documents` and `/search` then
waited for a thread until the uploads ended. Here uploads run on the `uploads` lane only;
storage reads, search and health have lanes of their own that uploads cannot reach, and the
uploads lane runs at a lower CPU priority, so an upload's embedding yields the cores to a
search's. PDF pages drawn for readers have a lane of their own too, one thread per render worker
(which uploads never use), with `RENDER_QUEUE` places to wait. A lane with a queue limit refuses
work past it (429: `UploadQueueFull`, `RenderQueueFull`; 503 `SearchQueueFull` when a process
past its capacity has `SEARCH_QUEUE` searches waiting) instead of queueing without bound.
Counting a long prompt with the embedded model's GGUF vocabulary has a lane of its own (`tokens`),
so a summary's counting never takes a search's thread; start-up and shut-down (models loaded, the
database migrated, workers warmed up and closed) run on `lifecycle`, whose threads the service's
requests never need. No code of the service uses the default executor (tests/test_executors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from docassist.pipelines import metrics
from docassist.pipelines.errors import RenderQueueFull, SearchQueueFull, TooBusy, UploadQueueFull
from docassist.pipelines.priorities import BULK_NICE, lower_this_thread

T = TypeVar("T")
RENDER_WORKERS = 1  # processes that draw PDF pages, apart from the extraction workers; one lane thread each
RENDER_QUEUE = 4  # page renders that may wait for one: each is over within PAGE_RENDER_TIMEOUT_S
RENDER_RETRY_S = 5
SEARCH_WORKERS, SEARCH_QUEUE = 4, 8  # searches waiting past these wait longer than a search's p99 goal
DIRECTORY_WORKERS, DIRECTORY_QUEUE = 4, 32


@dataclass(frozen=True)
class Refusal:
    """What a full lane answers: its error, what it runs, and the settings that bound it."""

    error: type[TooBusy]
    what: str
    bound_by: str


UPLOADS_FULL = Refusal(UploadQueueFull, "uploads", "UPLOAD_WORKERS + UPLOAD_QUEUE")
RENDERS_FULL = Refusal(RenderQueueFull, "page renders", "the page renderers and their queue")
SEARCHES_FULL = Refusal(
    SearchQueueFull, "searches", f"the search lane ({SEARCH_WORKERS} threads, {SEARCH_QUEUE} waiting)"
)
DIRECTORY_FULL = Refusal(
    TooBusy,
    "sign-ins and directory look-ups",
    f"the directory lane ({DIRECTORY_WORKERS} threads, {DIRECTORY_QUEUE} waiting)",
)


class Lane:
    """A bounded thread pool; with `queue` set, at most `workers + queue` calls admitted at once,
    past them `refusal`'s error; with `nice`, its threads run at that lower CPU priority."""

    def __init__(
        self,
        name: str,
        workers: int,
        queue: int | None = None,
        retry_after_s: int = 5,
        nice: int = 0,
        refusal: Refusal = UPLOADS_FULL,
    ) -> None:
        self.name, self.workers, self.queue, self.retry_after_s = name, workers, queue, retry_after_s
        self.refusal = refusal
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"lane-{name}", initializer=lower_this_thread, initargs=(nice,)
        )
        self.admitted = 0

    @property
    def full(self) -> bool:
        return self.queue is not None and self.admitted >= self.workers + self.queue

    def check(self) -> None:
        """The lane's refusal (`UploadQueueFull` for uploads) when it admits no more calls."""
        if self.full:
            r, places = self.refusal, self.workers + (self.queue or 0)
            raise r.error(
                f"{self.admitted} {r.what} are running or waiting, the most {r.bound_by} admit ({places}); "
                f"retry in {self.retry_after_s}s",
                retry_after_s=self.retry_after_s,
                workers=self.workers,
                queue=self.queue,
            )

    def submit(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """`fn(*args)` on this lane's threads, admitted now or refused at once; its future.
        Cancelling the future drops a call that has not started; one that has started runs on
        (blocking code cannot be interrupted) — callers that can stop early pass it a flag."""
        self.check()
        loop = asyncio.get_running_loop()
        future = self._executor.submit(functools.partial(fn, *args))
        self.admitted += 1  # until the call has ended or was dropped, not until its caller left
        metrics.lane_load(self.name, self.admitted, self.workers)
        future.add_done_callback(lambda _: _soon(loop, self._release))
        return asyncio.wrap_future(future)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on this lane's threads, waited for by a thread that is not the event loop's
        (an upload's, handing a small document's embedding to the search lane's priority)."""
        return self._executor.submit(functools.partial(fn, *args)).result()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on this lane's threads; cancelling the caller drops a call not yet started."""
        return await self.submit(fn, *args)

    def _release(self) -> None:
        self.admitted -= 1
        metrics.lane_load(self.name, self.admitted, self.workers)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody counts any more
        loop.call_soon_threadsafe(fn)


@dataclass
class Lanes:
    """The lanes of a process (the worker role uses those its parts need)."""

    uploads: Lane
    storage: Lane
    search: Lane
    health: Lane
    pages: Lane  # PDF pages rendered for readers: each thread drives a render worker of its own
    tokens: Lane  # long prompts counted with the embedded model's GGUF vocabulary
    lifecycle: Lane  # the process's own start and stop: idle while it serves
    directory: Lane  # LDAP binds and searches: a slow directory never holds a storage thread

    @classmethod
    def build(cls, upload_workers: int, upload_queue: int) -> Lanes:
        return cls(
            uploads=Lane("uploads", upload_workers, upload_queue, nice=BULK_NICE),
            storage=Lane("storage", 4),
            search=Lane("search", SEARCH_WORKERS, SEARCH_QUEUE, retry_after_s=1, refusal=SEARCHES_FULL),
            health=Lane("health", 2),
            pages=Lane("pages", RENDER_WORKERS, RENDER_QUEUE, RENDER_RETRY_S, refusal=RENDERS_FULL),
            tokens=Lane("tokens", 2),
            lifecycle=Lane("lifecycle", 4),
            directory=Lane("directory", DIRECTORY_WORKERS, DIRECTORY_QUEUE, refusal=DIRECTORY_FULL),
        )

    def close(self) -> None:
        for lane in (
            self.uploads,
            self.storage,
            self.search,
            self.health,
            self.pages,
            self.tokens,
            self.lifecycle,
            self.directory,
        ):
            lane.close()
