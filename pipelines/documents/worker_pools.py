"""The worker processes of the extraction sandbox, kept in one place: each a single-process pool,
started capped (`workers.start_worker`), replaced when it overran or died, and its pid recorded in
DATA_DIR/logs/extract-workers.pids so the next start can kill a worker an earlier process left
behind. Uploads' readers and the page renderers alike are such pools (`sandbox.py`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TypeVar

from docassist.pipelines.documents.workers import start_worker
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.lifelines import kill_strays
from docassist.pipelines.logs import event

T = TypeVar("T")
Pool = concurrent.futures.ProcessPoolExecutor


class Replace(Exception):
    """The worker overran its time or died: replace it, then raise `error`."""

    def __init__(self, why: str, error: Exception) -> None:
        super().__init__(why)
        self.why, self.error = why, error


@dataclass(frozen=True)
class Failures:
    """What a task's failure is called: the log's reason when it overran, the error for the client
    then, and the error when it ran out of memory (or its worker died of it)."""

    why_overran: str
    overran: DocassistError
    too_big: DocassistError


class WorkerPools:
    """Every worker pool of a sandbox, with their pids kept on disk."""

    def __init__(self, memory_mb: int, pid_file: Path | None = None) -> None:
        self.memory_mb, self.pid_file = memory_mb, pid_file
        self._recorded: frozenset[int] = frozenset()
        self._pools: set[Pool] = set()
        self._lock = threading.Lock()
        if pid_file is not None and (killed := kill_strays(pid_file)):
            event(
                "[INGEST] Killed extraction workers left by an earlier process", f"pids={killed}", level=logging.WARNING
            )

    def new(self) -> Pool:
        pool = Pool(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(self.memory_mb, os.getpid()),
        )
        with self._lock:
            self._pools.add(pool)
        return pool

    def record(self) -> None:
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

    @staticmethod
    def result(
        future: concurrent.futures.Future[T], timeout_s: float, failures: Failures, wait_s: float | None = None
    ) -> T:
        """The task's result within `wait_s` (default `timeout_s`); `failures` say what went wrong
        (`Replace` first when its worker overran or died)."""
        try:
            return future.result(timeout=max(timeout_s if wait_s is None else wait_s, 0.0))
        except concurrent.futures.TimeoutError:
            raise Replace(failures.why_overran, failures.overran) from None
        except MemoryError:  # the worker hit its address-space cap and survived
            raise failures.too_big from None
        except BrokenProcessPool:
            raise Replace(f"its worker died: {failures.too_big.message}", failures.too_big) from None

    def replace(self, broken: Pool, why: str) -> Pool:
        for proc in list(getattr(broken, "_processes", {}).values()):
            proc.kill()
        broken.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._pools.discard(broken)
        event("[INGEST] Extraction worker replaced", why, level=logging.WARNING)
        return self.new()

    def forget_pids(self) -> None:
        if self.pid_file is not None:
            with contextlib.suppress(OSError):
                self.pid_file.unlink()
