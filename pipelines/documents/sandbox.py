"""Extraction in a child process, with a time limit and a memory cap.

A parser fed a hostile or pathological file can take minutes or gigabytes before any limit in
`extract.py` sees it. Here it runs in a worker process whose address space is capped
(`EXTRACT_MEMORY_MB`) and whose result is awaited at most `EXTRACT_TIMEOUT_S`: a file that needs
more fails alone — 413 `markup_too_large` or 422 `unreadable_document` naming the limit — and
the worker is replaced; the service's own memory and event loop never see it. A scan is OCR'd in
the workers one page per task, each within `OCR_PAGE_TIMEOUT_S`, so the service can report
pages done of total, a slow page fails alone, and an upload reads pages on every idle worker.
PDF pages drawn for readers run on render workers of their own (`RENDER_WORKERS`), under the same
cap, each within `PAGE_RENDER_TIMEOUT_S`: renders never take a worker an upload could use.

A worker cannot outlive the service: it watches its parent and exits the moment the service is
gone, however it died (kill -9 included), and with the workers goes multiprocessing's resource
tracker, which exits when the last process holding its pipe does. As a second line, the
workers' pids are kept in DATA_DIR/logs/extract-workers.pids, and a start kills those an earlier
process left behind (each checked against its command line).
"""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from docassist.pipelines import metrics
from docassist.pipelines.documents.extract import (
    OcrProgress,
    ReadParts,
    TextSoFar,
    finish,
    ocr_part,
    read_or_finish,
)
from docassist.pipelines.documents.formats.ocr import OcrPage
from docassist.pipelines.documents.highlight import Highlight
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.documents.locations import Extracted
from docassist.pipelines.documents.pages import RenderedPage, StoredPdf, render_stored_page, warm_renderer
from docassist.pipelines.documents.worker_pools import Failures, Pool, Replace, WorkerPools
from docassist.pipelines.documents.workers import warm
from docassist.pipelines.errors import (
    MarkupTooLarge,
    PageTooCostly,
    RenderQueueFull,
    UnreadableDocument,
)
from docassist.pipelines.lanes import RENDER_RETRY_S, RENDER_WORKERS
from docassist.pipelines.logs import event

T = TypeVar("T")
_OCR_GRACE_S = 10  # past OCR_PAGE_TIMEOUT_S, which Tesseract's own timeout enforces, before the worker is killed
_WARM_S = 120  # a new worker's start and imports


class ExtractionSandbox:
    """`workers` single-process pools: a file that times out or crashes its worker takes down only
    its own, which is replaced; other uploads being read meanwhile are not disturbed. Apart from
    them, `render_workers` pools that draw PDF pages and nothing else."""

    def __init__(
        self,
        limits: ExtractLimits,
        timeout_s: float = 120,
        memory_mb: int = 2048,
        workers: int = 2,
        pid_file: Path | None = None,
        render_workers: int = RENDER_WORKERS,
    ) -> None:
        self.limits, self.timeout_s, self.memory_mb = limits, timeout_s, memory_mb
        self.pools = WorkerPools(memory_mb, pid_file)
        self._lock = threading.Lock()
        self._waiting = 0  # uploads waiting for a worker: borrowing stops while any do
        self._free: queue.Queue[Pool] = queue.Queue()
        for _ in range(workers):
            self._free.put(self.pools.new())
        self._renderers: queue.Queue[Pool] = queue.Queue()
        self._warming: dict[Pool, concurrent.futures.Future[bool]] = {}  # replaced renderers loading
        for _ in range(render_workers):
            self._renderers.put(self.pools.new())

    def warm_up(self) -> None:
        """Start the workers and load the parsers before the first upload (or page) needs them."""
        pools = [self._free.get() for _ in range(self._free.qsize())]
        renderers = [self._renderers.get() for _ in range(self._renderers.qsize())]
        try:
            warming = [pool.submit(warm) for pool in pools] + [pool.submit(warm_renderer) for pool in renderers]
            for fut in warming:
                fut.result(timeout=_WARM_S)
            self.pools.record()
        finally:
            for pool in pools:
                self._free.put(pool)
            for pool in renderers:
                self._renderers.put(pool)

    def extract(self, filename: str, data: bytes, progress: Callable[[OcrProgress], None] | None = None) -> Extracted:
        """The document's text and sections, read in a worker. A scan is read page by page, each page
        a task of its own within OCR_PAGE_TIMEOUT_S, on this upload's worker and on any other that is
        free meanwhile; `progress` is called here, in the service's process, before the first page
        and after each, with the text read so far; an exception it raises (an abandoned upload)
        stops the OCR there."""
        pool = self._take()
        try:
            read = self._run(
                pool, filename, self.timeout_s, "EXTRACT_TIMEOUT_S", read_or_finish, filename, data, self.limits
            )
            if isinstance(read, Extracted):  # nothing to OCR: read and normalised in the worker
                return read
            started = time.perf_counter()
            pages = self._ocr(pool, read, data, progress)
            seconds = time.perf_counter() - started
            metrics.ocr(len(pages), seconds)
            event(
                "[INGEST] OCR",
                f"{filename!r}: {len(pages)} scanned pages in {seconds:.1f}s ({len(pages) / seconds:.2f} pages/s)",
                pages=len(pages),
                seconds=round(seconds, 3),
            )
            return finish(read, pages, self.limits)  # the pages' text joined here: bounded by MAX_OCR_PAGES
        except Replace as exc:
            pool = self.pools.replace(pool, exc.why)
            raise exc.error from None
        finally:
            self._free.put(pool)

    def render_page(self, source: StoredPdf, number: int, dpi: int, highlight: Highlight | None = None) -> RenderedPage:
        """Page `number` of a stored PDF as PNG bytes, drawn by a render worker (which reads the file
        from the database itself) within PAGE_RENDER_TIMEOUT_S; past it, or past the memory cap,
        the worker is replaced and the page refused (`PageTooCostly`). Called from the pages
        lane, which has one thread per render worker: a free one is always there."""
        pool = self._renderers.get()
        try:
            self._loaded(pool)
            future = pool.submit(render_stored_page, source, number, self.limits, dpi, highlight)
            self.pools.record()
            return self._rendered(future, source.filename, number)
        except Replace as exc:
            pool = self.pools.replace(pool, exc.why)
            self._warming[pool] = pool.submit(warm_renderer)  # loads while the refusal is answered
            raise exc.error from None
        finally:
            self._renderers.put(pool)

    def _loaded(self, pool: Pool) -> None:
        """Wait for a replaced render worker to load, so the next render's budget is spent drawing."""
        warming = self._warming.pop(pool, None)
        if warming is None:
            return
        try:
            warming.result(timeout=_WARM_S)
        except (concurrent.futures.TimeoutError, BrokenProcessPool):
            restarting = RenderQueueFull(
                f"the render worker is starting again; retry in {RENDER_RETRY_S}s", retry_after_s=RENDER_RETRY_S
            )
            raise Replace("a new render worker did not start", restarting) from None

    def _rendered(self, future: concurrent.futures.Future[RenderedPage], filename: str, number: int) -> RenderedPage:
        """The render's PNG within PAGE_RENDER_TIMEOUT_S; `PageTooCostly` (after `Replace` when the
        worker must go) when it overran that or the memory cap."""
        budget = self.limits.page_render_timeout_s
        page = f"page {number} of {filename!r}"
        failures = Failures(
            f"{page} took longer than {budget:g}s to draw",
            PageTooCostly(
                f"{page} takes longer to draw than PAGE_RENDER_TIMEOUT_S ({budget:g}s); it was stopped",
                page=number,
                limit="PAGE_RENDER_TIMEOUT_S",
            ),
            PageTooCostly(
                f"{page} needs more memory to draw than EXTRACT_MEMORY_MB ({self.memory_mb} MB)",
                page=number,
                limit="EXTRACT_MEMORY_MB",
            ),
        )
        return self.pools.result(future, budget, failures)

    def _take(self) -> Pool:
        """A worker of its own, counted as waiting meanwhile so OCR borrows none and gives borrowed
        ones back."""
        with self._lock:
            self._waiting += 1
        try:
            return self._free.get()
        finally:
            with self._lock:
                self._waiting -= 1

    def _borrow(self) -> Pool | None:
        """A free worker, unless another upload is waiting for one: it comes first."""
        with self._lock:
            if self._waiting:
                return None
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return None

    def _ocr(
        self,
        own: Pool,
        read: ReadParts,
        data: bytes,
        progress: Callable[[OcrProgress], None] | None,
    ) -> list[OcrPage]:
        """Every scanned page's text and words, in order (`_PageRun`); the next pages are sent before
        `progress` hears of the last, so what it does (embedding the text so far) overlaps the OCR."""
        run, so_far = _PageRun(self, own, read, data), TextSoFar(read)
        if progress is not None:
            progress(OcrProgress(0, len(run.pages), so_far.after(run.texts)))
        try:
            run.send()
            while run.pending:
                run.collect()
                run.return_spare()
                run.send()
                if progress is not None:
                    progress(OcrProgress(len(run.texts), len(run.pages), so_far.after(run.texts)))
            return run.read_pages
        finally:
            run.close()

    def _run(
        self,
        pool: Pool,
        filename: str,
        timeout_s: float,
        limit_name: str,
        fn: Callable[..., T],
        *args: object,
    ) -> T:
        """`fn(*args)` in the worker of `pool`, within `timeout_s`; a worker that overran or died is
        to be replaced (`Replace`)."""
        future = pool.submit(fn, *args)
        self.pools.record()
        return self.pools.result(future, timeout_s, self._reading_failures(filename, timeout_s, limit_name))

    def _reading_failures(self, filename: str, timeout_s: float, limit_name: str) -> Failures:
        too_big = MarkupTooLarge(
            f"reading {filename!r} needed more memory than EXTRACT_MEMORY_MB ({self.memory_mb} MB)", filename=filename
        )
        overran = UnreadableDocument(
            f"reading {filename!r} took longer than {limit_name} ({timeout_s:g}s)", filename=filename
        )
        return Failures(f"{filename!r} took longer than {timeout_s:g}s to read", overran, too_big)

    def close(self) -> None:
        for free in (self._free, self._renderers):
            while not free.empty():
                free.get().shutdown(wait=False, cancel_futures=True)
        self.pools.forget_pids()


@dataclass
class _Sent:
    pool: Pool
    future: concurrent.futures.Future[str]
    deadline: float


class _PageRun:
    """One scan's pages in flight. Pages go to the upload's own worker and to workers it borrows
    while no other upload waits for one (two pages read side by side on two cores, Tesseract's own
    advice for batch work); a borrowed worker goes back after its page once another upload waits
    or no page is left to send. A broken borrowed worker is replaced here; a broken own worker
    (`Replace` raised) by `extract`."""

    def __init__(self, sandbox: ExtractionSandbox, own: Pool, read: ReadParts, data: bytes) -> None:
        self.sandbox, self.own, self.read, self.data = sandbox, own, read, data
        self.pages = [part.ocr_page or 0 for part in read.ocr_parts]
        self.page_timeout = sandbox.limits.ocr_page_timeout_s + _OCR_GRACE_S
        self.texts: list[str] = []
        self.read_pages: list[OcrPage] = []
        self.idle: list[Pool] = [own]
        self.borrowed: set[Pool] = set()
        self.pending: collections.deque[_Sent] = collections.deque()

    def _unsent(self) -> int:
        return len(self.pages) - len(self.texts) - len(self.pending)

    def send(self) -> None:
        """A page to every idle worker, borrowing free ones, while pages are left."""
        while self._unsent():
            if not self.idle:
                extra = self.sandbox._borrow()
                if extra is None:
                    break
                self.borrowed.add(extra)
                self.idle.append(extra)
            pool = self.idle.pop()
            page = self.pages[len(self.texts) + len(self.pending)]
            future = pool.submit(ocr_part, self.read.filename, self.read.ext, page, self.data, self.sandbox.limits)
            self.pending.append(_Sent(pool, future, time.monotonic() + self.page_timeout))
        self.sandbox.pools.record()

    def collect(self) -> None:
        """The oldest page sent, read (pages come back in order)."""
        sent = self.pending.popleft()
        wait = sent.deadline - time.monotonic()
        try:
            failures = self.sandbox._reading_failures(self.read.filename, self.page_timeout, "OCR_PAGE_TIMEOUT_S")
            page = self.sandbox.pools.result(sent.future, self.page_timeout, failures, wait)
        except Replace as exc:
            if sent.pool is self.own:
                raise
            self.borrowed.discard(sent.pool)
            self.sandbox._free.put(self.sandbox.pools.replace(sent.pool, exc.why))
            raise exc.error from None
        self.texts.append(page.text)
        self.read_pages.append(page)
        self.idle.append(sent.pool)

    def return_spare(self) -> None:
        """Idle borrowed workers back, once another upload waits or no page is left to send."""
        if not (self.sandbox._waiting or not self._unsent()):
            return
        for pool in [p for p in self.idle if p in self.borrowed]:
            self.idle.remove(pool)
            self.borrowed.discard(pool)
            self.sandbox._free.put(pool)

    def close(self) -> None:
        for sent in self.pending:
            sent.future.cancel()  # not started: dropped; a page being read finishes in its worker
        for pool in list(self.borrowed):
            self.borrowed.discard(pool)
            self.sandbox._free.put(pool)
