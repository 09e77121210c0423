"""Extraction in a child process, with a time limit and a memory cap.

A parser fed a hostile or pathological file can take minutes or gigabytes before any limit in
`extract.py` sees it. Here it runs in a worker process whose address space is capped
(`EXTRACT_MEMORY_MB`) and whose result is awaited at most `EXTRACT_TIMEOUT_S`: a file that needs
more fails alone — 413 `markup_too_large` or 422 `unreadable_document` naming the limit — and
the worker is replaced; the service's own memory and event loop never see it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import queue
import resource
from concurrent.futures.process import BrokenProcessPool

from docassist.pipelines.documents.extract import ExtractLimits, extract_text
from docassist.pipelines.errors import MarkupTooLarge, UnreadableDocument
from docassist.pipelines.logs import event


def _cap_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _warm() -> bool:
    import docx  # noqa: F401 - load the parsers once per worker
    import lxml.html  # noqa: F401
    import pypdf  # noqa: F401

    return True


class ExtractionSandbox:
    """`workers` single-process pools: a file that times out or crashes its worker takes down only
    its own, which is replaced; other uploads being read meanwhile are not disturbed."""

    def __init__(self, limits: ExtractLimits, timeout_s: float = 120, memory_mb: int = 2048, workers: int = 2) -> None:
        self.limits, self.timeout_s, self.memory_mb = limits, timeout_s, memory_mb
        self._free: queue.Queue[concurrent.futures.ProcessPoolExecutor] = queue.Queue()
        for _ in range(workers):
            self._free.put(self._new_pool())

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_cap_memory,
            initargs=(self.memory_mb,),
        )

    def warm_up(self) -> None:
        """Start the workers and load the parsers before the first upload needs them."""
        pools = [self._free.get() for _ in range(self._free.qsize())]
        try:
            for fut in [pool.submit(_warm) for pool in pools]:
                fut.result(timeout=120)
        finally:
            for pool in pools:
                self._free.put(pool)

    def extract(self, filename: str, data: bytes) -> str:
        pool = self._free.get()
        try:
            return pool.submit(extract_text, filename, data, self.limits).result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            pool = self._replace(pool, f"{filename!r} took longer than {self.timeout_s:g}s to read")
            raise UnreadableDocument(
                f"reading {filename!r} took longer than EXTRACT_TIMEOUT_S ({self.timeout_s:g}s)", filename=filename
            ) from None
        except MemoryError:  # the worker hit its address-space cap and survived
            raise MarkupTooLarge(
                f"reading {filename!r} needed more memory than EXTRACT_MEMORY_MB ({self.memory_mb} MB)",
                filename=filename,
            ) from None
        except BrokenProcessPool:
            pool = self._replace(pool, f"the worker reading {filename!r} died")
            raise MarkupTooLarge(
                f"reading {filename!r} needed more memory than EXTRACT_MEMORY_MB ({self.memory_mb} MB)",
                filename=filename,
            ) from None
        finally:
            self._free.put(pool)

    def _replace(
        self, broken: concurrent.futures.ProcessPoolExecutor, why: str
    ) -> concurrent.futures.ProcessPoolExecutor:
        for proc in list(getattr(broken, "_processes", {}).values()):
            proc.kill()
        broken.shutdown(wait=False, cancel_futures=True)
        event("[INGEST] Extraction worker replaced", why, level=30)
        return self._new_pool()

    def close(self) -> None:
        while not self._free.empty():
            self._free.get().shutdown(wait=False, cancel_futures=True)
