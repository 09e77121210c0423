"""Extraction in a child process, with a time limit and a memory cap.

A parser fed a hostile or pathological file can take minutes or gigabytes before any limit in
`extract.py` sees it. Here it runs in a worker process whose address space is capped
(`EXTRACT_MEMORY_MB`) and whose result is awaited at most `EXTRACT_TIMEOUT_S`: a file that needs
more fails alone — 413 `markup_too_large` or 422 `unreadable_document` naming the limit — and
the worker is replaced; the service's own memory and event loop never see it. A scan is OCR'd in
the workers one page per task, each within `OCR_PAGE_TIMEOUT_S`, so the service can report
pages done of total, a slow page fails alone, and an upload reads pages on every idle worker.

A worker cannot outlive the service: it watches its parent and exits the moment the service is
gone, however it died (kill -9 included), and with the workers goes multiprocessing's resource
tracker, which exits when the last process holding its pipe does. As a second line, the
workers' pids are kept in DATA_DIR/logs/extract-workers.pids, and a start kills those an earlier
process left behind (each checked against its command line).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TypeVar

from docassist.pipelines import metrics
from docassist.pipelines.documents.extract import (
    ExtractLimits,
    OcrProgress,
    ReadParts,
    TextSoFar,
    finish,
    ocr_part,
    read_or_finish,
)
from docassist.pipelines.documents.locations import Extracted
from docassist.pipelines.documents.pages import render_page_png
from docassist.pipelines.documents.workers import start_worker, warm
from docassist.pipelines.errors import MarkupTooLarge, TooBusy, UnreadableDocument
from docassist.pipelines.lifelines import kill_strays
from docassist.pipelines.logs import event

T = TypeVar("T")
Pool = concurrent.futures.ProcessPoolExecutor
_OCR_GRACE_S = 10  # past OCR_PAGE_TIMEOUT_S, which Tesseract's own timeout enforces, before the worker is killed
RENDER_WAIT_S = 30  # a page render waits this long for a worker (an OCR gives a borrowed one back after its page)


class _Replace(Exception):
    """The worker overran its time or died: replace it, then raise `error`."""

    def __init__(self, why: str, error: Exception) -> None:
        super().__init__(why)
        self.why, self.error = why, error


class ExtractionSandbox:
    """`workers` single-process pools: a file that times out or crashes its worker takes down only
    its own, which is replaced; other uploads being read meanwhile are not disturbed."""

    def __init__(
        self,
        limits: ExtractLimits,
        timeout_s: float = 120,
        memory_mb: int = 2048,
        workers: int = 2,
        pid_file: Path | None = None,
    ) -> None:
        self.limits, self.timeout_s, self.memory_mb = limits, timeout_s, memory_mb
        self.pid_file = pid_file
        self._recorded: frozenset[int] = frozenset()
        self._pools: set[concurrent.futures.ProcessPoolExecutor] = set()
        self._lock = threading.Lock()
        self._waiting = 0  # uploads waiting for a worker: borrowing stops while any do
        if pid_file is not None:
            killed = kill_strays(pid_file)
            if killed:
                event(
                    "[INGEST] Killed extraction workers left by an earlier process",
                    f"pids={killed}",
                    level=logging.WARNING,
                )
        self._free: queue.Queue[concurrent.futures.ProcessPoolExecutor] = queue.Queue()
        for _ in range(workers):
            self._free.put(self._new_pool())

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(self.memory_mb, os.getpid()),
        )
        with self._lock:
            self._pools.add(pool)
        return pool

    def _record_pids(self) -> None:
        """Keep the workers' and the resource tracker's pids where the next start finds them."""
        if self.pid_file is None:
            return
        with self._lock:
            pids = {pid for pool in self._pools for pid in getattr(pool, "_processes", None) or {}}
            tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
            pids |= {tracker} if tracker else set()
            if frozenset(pids) == self._recorded:
                return
            self._recorded = frozenset(pids)
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(" ".join(str(p) for p in (os.getpid(), *sorted(pids))) + "\n")

    def warm_up(self) -> None:
        """Start the workers and load the parsers before the first upload needs them."""
        pools = [self._free.get() for _ in range(self._free.qsize())]
        try:
            for fut in [pool.submit(warm) for pool in pools]:
                fut.result(timeout=120)
            self._record_pids()
        finally:
            for pool in pools:
                self._free.put(pool)

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
            texts = self._ocr(pool, read, data, progress)
            seconds = time.perf_counter() - started
            metrics.ocr(len(texts), seconds)
            event(
                "[INGEST] OCR",
                f"{filename!r}: {len(texts)} scanned pages in {seconds:.1f}s ({len(texts) / seconds:.2f} pages/s)",
                pages=len(texts),
                seconds=round(seconds, 3),
            )
            return finish(read, texts, self.limits)  # the pages' text joined here: bounded by MAX_OCR_PAGES
        except _Replace as exc:
            pool = self._replace(pool, exc.why)
            raise exc.error from None
        finally:
            self._free.put(pool)

    def render_page(self, filename: str, data: bytes, number: int, dpi: int) -> bytes:
        """Page `number` of a stored PDF as PNG bytes, rendered in a worker within EXTRACT_TIMEOUT_S.
        While it waits for a worker, uploads' OCR borrows none and gives borrowed ones back, so
        it waits at most for one scanned page unless both workers read uploads of their own;
        past `RENDER_WAIT_S`, `TooBusy`."""
        try:
            pool = self._take(timeout_s=RENDER_WAIT_S)
        except queue.Empty:
            raise TooBusy(
                f"every extraction worker is reading an upload; retry in {RENDER_WAIT_S // 6}s",
                retry_after_s=RENDER_WAIT_S // 6,
            ) from None
        try:
            return self._run(
                pool, filename, self.timeout_s, "EXTRACT_TIMEOUT_S", render_page_png, data, number, self.limits, dpi
            )
        except _Replace as exc:
            pool = self._replace(pool, exc.why)
            raise exc.error from None
        finally:
            self._free.put(pool)

    def _take(self, timeout_s: float | None = None) -> Pool:
        """A worker of its own, counted as waiting meanwhile so OCR borrows none and gives borrowed
        ones back (`queue.Empty` past `timeout_s`)."""
        with self._lock:
            self._waiting += 1
        try:
            return self._free.get(timeout=timeout_s)
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
    ) -> list[str]:
        """Every scanned page's text, in order (`_PageRun`); the next pages are sent before
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
            return run.texts
        finally:
            run.close()

    def _run(
        self,
        pool: concurrent.futures.ProcessPoolExecutor,
        filename: str,
        timeout_s: float,
        limit_name: str,
        fn: Callable[..., T],
        *args: object,
    ) -> T:
        """`fn(*args)` in the worker of `pool`, within `timeout_s`; a worker that overran or died is
        to be replaced (`_Replace`)."""
        future = pool.submit(fn, *args)
        self._record_pids()
        return self._result(future, filename, timeout_s, limit_name)

    def _result(
        self,
        future: concurrent.futures.Future[T],
        filename: str,
        timeout_s: float,
        limit_name: str,
        wait_s: float | None = None,
    ) -> T:
        """The task's result within `wait_s` (default `timeout_s`, the limit named); `_Replace` when
        its worker overran or died."""
        try:
            return future.result(timeout=max(timeout_s if wait_s is None else wait_s, 0.0))
        except concurrent.futures.TimeoutError:
            raise _Replace(
                f"{filename!r} took longer than {timeout_s:g}s to read",
                UnreadableDocument(
                    f"reading {filename!r} took longer than {limit_name} ({timeout_s:g}s)", filename=filename
                ),
            ) from None
        except MemoryError:  # the worker hit its address-space cap and survived
            raise MarkupTooLarge(
                f"reading {filename!r} needed more memory than EXTRACT_MEMORY_MB ({self.memory_mb} MB)",
                filename=filename,
            ) from None
        except BrokenProcessPool:
            raise _Replace(
                f"the worker reading {filename!r} died",
                MarkupTooLarge(
                    f"reading {filename!r} needed more memory than EXTRACT_MEMORY_MB ({self.memory_mb} MB)",
                    filename=filename,
                ),
            ) from None

    def _replace(
        self, broken: concurrent.futures.ProcessPoolExecutor, why: str
    ) -> concurrent.futures.ProcessPoolExecutor:
        for proc in list(getattr(broken, "_processes", {}).values()):
            proc.kill()
        broken.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._pools.discard(broken)
        event("[INGEST] Extraction worker replaced", why, level=logging.WARNING)
        return self._new_pool()

    def close(self) -> None:
        while not self._free.empty():
            self._free.get().shutdown(wait=False, cancel_futures=True)
        if self.pid_file is not None:
            with contextlib.suppress(OSError):
                self.pid_file.unlink()


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
    (`_Replace` raised) by `extract`."""

    def __init__(self, sandbox: ExtractionSandbox, own: Pool, read: ReadParts, data: bytes) -> None:
        self.sandbox, self.own, self.read, self.data = sandbox, own, read, data
        self.pages = [part.ocr_page or 0 for part in read.ocr_parts]
        self.page_timeout = sandbox.limits.ocr_page_timeout_s + _OCR_GRACE_S
        self.texts: list[str] = []
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
        self.sandbox._record_pids()

    def collect(self) -> None:
        """The oldest page sent, read (pages come back in order)."""
        sent = self.pending.popleft()
        wait = sent.deadline - time.monotonic()
        try:
            text = self.sandbox._result(sent.future, self.read.filename, self.page_timeout, "OCR_PAGE_TIMEOUT_S", wait)
        except _Replace as exc:
            if sent.pool is self.own:
                raise
            self.borrowed.discard(sent.pool)
            self.sandbox._free.put(self.sandbox._replace(sent.pool, exc.why))
            raise exc.error from None
        self.texts.append(text)
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
