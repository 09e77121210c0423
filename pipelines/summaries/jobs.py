"""Background summary jobs on huey: a durable queue plus worker threads, inside the service.

huey keeps the queue (SQLite under DATA_DIR for the local profile; `JOBS_REDIS_URL` selects
its Redis storage behind the same API). Its worker threads hand each job to the service's
event loop, where the summary runs as a background flight: it yields LLM endpoints to
interactive requests and never blocks the loop. Job status and progress live in the summary
store's `jobs` table. A job that was running when the process stopped is queued again at the
next start and resumes from its memoised partial results; a job that failed because an
endpoint was down is marked retryable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Future
from pathlib import Path

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.errors import NotFound
from docassist.pipelines.llm.scheduling import background
from docassist.pipelines.logs import event, request_id_var
from docassist.pipelines.summaries.events import JobProgress, SummaryComplete, SummaryError
from docassist.pipelines.summaries.service import SummaryService
from docassist.pipelines.summaries.store import Job, SummaryStore

RETRYABLE = {"llm_unavailable", "vector_store_unavailable", "cancelled", "internal_error"}
logging.getLogger("huey").setLevel(logging.WARNING)


class _EmbeddedConsumer(Consumer):
    """huey's consumer without its signal handlers: uvicorn owns the process's signals."""

    def _set_signal_handlers(self) -> None:
        return None


def make_huey(data_dir: Path, redis_url: str | None) -> Huey:
    if redis_url:
        return RedisHuey("docassist-jobs", url=redis_url, results=False)
    return SqliteHuey("docassist-jobs", filename=str(data_dir / "jobs-queue.sqlite3"), results=False)


class JobRunner:
    def __init__(
        self, huey: Huey, store: SummaryStore, registry: Registry, summaries: SummaryService, workers: int = 2
    ) -> None:
        self.huey, self.store, self.registry, self.summaries = huey, store, registry, summaries
        self.loop: asyncio.AbstractEventLoop | None = None
        self._futures: set[Future] = set()
        self._task = huey.task(retries=0, name="summarize_document")(self._execute)
        self.consumer = _EmbeddedConsumer(
            huey,
            workers=workers,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=0.5,
            check_worker_health=False,
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> int:
        """Start the workers; queue again the jobs a previous process left running."""
        self.loop = loop
        resumed = 0
        for job in self.store.unfinished_jobs():
            if job.status == "running":
                self.store.update_job(
                    job.job_id, status="pending", progress=job.progress.model_copy(update={"resumed": True})
                )
                self._task(job.job_id)
                resumed += 1
                event(
                    "Background job resumed after restart",
                    f"job_id={job.job_id} doc_id={job.doc_id}",
                    job_id=job.job_id,
                )
        self.consumer.start()
        return resumed

    def stop(self) -> None:
        self.consumer.stop(graceful=False)
        for fut in list(self._futures):
            fut.cancel()

    def submit(self, record: DocumentRecord, language: str) -> Job:
        """A job for this document's summary: the active one if there is one, else a new one."""
        latest = self.store.latest_job(record.space_id, record.doc_id)
        if latest and latest.status in ("pending", "running") and latest.language == language:
            return latest
        job = self.store.create_job(record.space_id, record.doc_id, language)
        self._task(job.job_id)
        event(
            "Background job queued",
            f"job_id={job.job_id} doc_id={record.doc_id} language={language}",
            job_id=job.job_id,
        )
        return job

    def retry(self, job: Job) -> Job:
        if job.status == "failed":
            self.store.update_job(job.job_id, status="pending", error=None, retryable=0, progress=JobProgress())
            self._task(job.job_id)
            event("Background job retried", f"job_id={job.job_id}", job_id=job.job_id)
        return self.store.get_job(job.job_id) or job

    # ---------------------------------------------------------------- in a huey worker thread
    def _execute(self, job_id: str) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(self._run(job_id), self.loop)
        self._futures.add(fut)
        try:
            with contextlib.suppress(Exception):  # the job row already says what happened
                fut.result()
        finally:
            self._futures.discard(fut)

    # ---------------------------------------------------------------- on the event loop
    async def _run(self, job_id: str) -> None:
        request_id_var.set(f"job-{job_id[:8]}")
        job = self.store.get_job(job_id)
        if job is None or job.status == "done":
            return
        record = self.registry.get(job.space_id, job.doc_id)
        if record is None:
            self.store.update_job(
                job_id, status="failed", retryable=0, error={"code": "not_found", "message": "the document was deleted"}
            )
            return
        self.store.update_job(job_id, status="running", attempts=job.attempts + 1)
        event(
            "Background summary started",
            f"job_id={job_id} doc_id={job.doc_id} attempt {job.attempts + 1}",
            job_id=job_id,
        )
        progress = job.progress
        try:
            with background():
                flight = self.summaries.start(record, job.language, pinned=True)
                async with self.summaries.following(flight, record) as events:
                    async for ev in events:
                        advanced = progress.advance(ev)
                        changed, progress = advanced != progress, advanced
                        if isinstance(ev, SummaryComplete):
                            self.store.update_job(job_id, status="done", progress=progress)
                            event(
                                "Background summary done",
                                f"job_id={job_id} doc_id={job.doc_id} cached={ev.cached}",
                                job_id=job_id,
                            )
                            return
                        if isinstance(ev, SummaryError):
                            self._failed(job_id, ev)
                            return
                        if changed:
                            self.store.update_job(job_id, progress=progress)
        except asyncio.CancelledError:
            self.store.update_job(job_id, status="running")  # resumed at the next start
            raise

    def _failed(self, job_id: str, error: SummaryError) -> None:
        self.store.update_job(job_id, status="failed", retryable=int(error.code in RETRYABLE), error=error.model_dump())
        event("Background summary failed", f"job_id={job_id}: {error.code}: {error.message}", level=30, job_id=job_id)

    def job(self, job_id: str, spaces: frozenset[str] | None) -> Job:
        """The job, if it belongs to one of `spaces` (None: any); else `NotFound`, whether or not
        a job of that id exists elsewhere: a job id is not a capability."""
        job = self.store.get_job(job_id)
        if job is None or (spaces is not None and job.space_id not in spaces):
            raise NotFound(f"no job {job_id!r}", job_id=job_id)
        return job
