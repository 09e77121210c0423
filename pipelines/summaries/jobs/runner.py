"""Background summary jobs: a durable queue (huey), workers that hold a lease on the job they run,
and a reaper that hands back the jobs of workers that died.

huey keeps the queue: SQLite under DATA_DIR by default, Redis when `REDIS_URL` is set, where the
jobs of every backend and of `docassist worker` processes meet. Its worker threads hand each job
to the process's event loop, where the summary runs as a background flight: it yields LLM
endpoints to interactive requests. A worker first claims the job in the database (a lease with
an expiry, renewed while it runs); the job's outcome is recorded only while it holds the lease.
When a lease runs out — the worker was killed — any worker's reaper queues the job again and it
resumes from its memoised partial results. A job that failed because an endpoint was down is
marked retryable. Its database reads and writes on the event loop run on the storage lane it is
given. Each state of a job it writes is also pushed to the job's followers in this process
(`broadcast`), which need not read the database for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from docassist.pipelines import tracing
from docassist.pipelines.broadcast import Broadcast
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.errors import JobError, NotFound, StoreUnavailable, shown
from docassist.pipelines.lanes import Lane
from docassist.pipelines.llm.scheduling import background
from docassist.pipelines.logs import event, request_id_var
from docassist.pipelines.summaries.events import SummaryComplete, SummaryError
from docassist.pipelines.summaries.jobs.store import Job, JobStore
from docassist.pipelines.summaries.runs.service import SummaryService

RETRYABLE = {"llm_unavailable", "vector_store_unavailable", "store_unavailable", "cancelled", "internal_error"}
LOST_MESSAGE_S = 900.0  # a job queued this long ago and still pending lost its message: queue it again
logging.getLogger("huey").setLevel(logging.WARNING)


class _EmbeddedConsumer(Consumer):
    """huey's consumer without its signal handlers: the process's owner (uvicorn) keeps them."""

    def _set_signal_handlers(self) -> None:
        return None


def make_huey(data_dir: Path, redis_url: str | None) -> Huey:
    if redis_url:
        return RedisHuey("docassist-jobs", url=redis_url, results=False)
    return SqliteHuey("docassist-jobs", filename=str(data_dir / "jobs-queue.sqlite3"), results=False)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobRunner:
    def __init__(
        self,
        huey: Huey,
        store: JobStore,
        registry: Registry,
        summaries: SummaryService,
        lane: Lane,
        workers: int = 2,
        shared: bool = False,
        lease_s: float = 30,
    ) -> None:
        """`lane`: where the job store is read and written from the event loop (the storage lane)."""
        self.huey, self.store, self.registry, self.summaries, self.lane = huey, store, registry, summaries, lane
        self.workers, self.shared, self.lease_s = workers, shared, lease_s
        self.owner = worker_name()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._futures: set[Future] = set()
        self.broadcast: Broadcast[Job] = Broadcast()  # the states of the jobs running here
        self._reaper: asyncio.Task | None = None
        self._task = huey.task(retries=0, name="summarize_document")(self._execute)
        self.consumer = _EmbeddedConsumer(
            huey,
            workers=max(1, workers),
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=0.5,
            check_worker_health=False,
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> int:
        """Start the workers and the reaper. Alone on its database (SQLite), a process knows that
        jobs left `running` belong to a process that stopped: they are queued again at once."""
        self.loop = loop
        resumed = 0
        if not self.shared:
            for job in self.store.unfinished():
                if job.status == "running" and self.store.requeue_if_expired(job):
                    self._enqueue(job)
                    resumed += 1
                    event(
                        "Background job resumed after restart",
                        f"job_id={job.job_id} doc_id={job.doc_id}",
                        job_id=job.job_id,
                    )
        if self.workers > 0:
            self.consumer.start()
            self._reaper = loop.create_task(self._reap(), name="job-reaper")
        return resumed

    def stop(self) -> None:
        """Stop the workers and the reaper; nothing to stop when `start` never ran."""
        if self.loop is None:
            return
        if self.workers > 0:
            self.consumer.stop(graceful=False)
        if self._reaper:
            self._reaper.cancel()
        for fut in list(self._futures):
            fut.cancel()

    def summary_job_for(self, record: DocumentRecord) -> Job | None:
        """The one rule for an upload that asked for its summary (new or a duplicate): a job for the
        summary in the document's language, unless that summary is already stored."""
        if self.summaries.is_cached(record, record.language):
            return None
        return self.submit(record, record.language)

    def summary_job_id_for(self, record: DocumentRecord) -> str | None:
        """The id of `summary_job_for`'s job: what an upload job records."""
        job = self.summary_job_for(record)
        return job.job_id if job is not None else None

    def submit(self, record: DocumentRecord, language: str) -> Job:
        """A job for this document's summary: the active one if there is one, else a new one."""
        latest = self.store.latest(record.space_id, record.doc_id)
        if latest and latest.status in ("pending", "running") and latest.language == language:
            return latest
        job = self.store.create(record.space_id, record.doc_id, language)
        self._enqueue(job)
        event(
            "Background job queued",
            f"job_id={job.job_id} doc_id={record.doc_id} language={language}",
            job_id=job.job_id,
        )
        return job

    def _enqueue(self, job: Job) -> bool:
        """Hand the job to the queue and note when; a queue that is down leaves it for the reaper."""
        try:
            self._task(job.job_id)
        except Exception as exc:  # Redis down: the job row stays pending, unqueued
            event(
                "Background job not queued yet",
                f"job_id={job.job_id}: {type(exc).__name__}: {exc}",
                level=logging.WARNING,
            )
            return False
        self.store.mark_queued(job.job_id)
        return True

    def retry(self, job: Job) -> Job:
        if job.status == "failed":
            self.store.reset(job.job_id)
            self._enqueue(job)
            event("Background job retried", f"job_id={job.job_id}", job_id=job.job_id)
        return self.store.get(job.job_id) or job

    def job(self, job_id: str, spaces: frozenset[str] | None) -> Job:
        """The job, if it belongs to one of `spaces` (None: any); else `NotFound`, whether or not
        a job of that id exists elsewhere: a job id is not a capability."""
        job = self.store.get(job_id)
        if job is None or (spaces is not None and job.space_id not in spaces):
            raise NotFound(f"no job {shown(job_id)}")
        return job

    # ---------------------------------------------------------------- in a huey worker thread
    def _execute(self, job_id: str) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(self._run(job_id), self.loop)
        self._futures.add(fut)
        try:
            with contextlib.suppress(Exception):  # the job row says what happened
                fut.result()
        finally:
            self._futures.discard(fut)

    # ---------------------------------------------------------------- on the event loop
    async def _run(self, job_id: str) -> None:
        """One attempt at a job: a trace of its own (`job`), its claim and its summary run under it."""
        request_id_var.set(f"job-{job_id[:8]}")
        with tracing.span("job", **{"job.id": job_id}):
            await self._attempt(job_id)

    async def _attempt(self, job_id: str) -> None:
        with tracing.span("job.claim", **{"job.id": job_id}):
            job = await self.lane.run(self.store.claim, job_id, self.owner, self.lease_s)
        if job is None:
            return  # done, failed, deleted, or another worker holds it
        self.broadcast.publish(job_id, job)
        try:
            record = await self.lane.run(self.registry.get, job.space_id, job.doc_id)
            if record is None:
                error = JobError(code="not_found", message="the document was deleted")
                await self._record(job_id, functools.partial(self.store.fail, job_id, self.owner, error, False))
                return
            await self._summarize(job, record)
        finally:
            self.broadcast.end(job_id)

    async def _summarize(self, job: Job, record: DocumentRecord) -> None:
        """The claimed job's summary run, its progress recorded as it goes, then its outcome."""
        job_id = job.job_id
        event(
            "Background summary started",
            f"job_id={job_id} doc_id={job.doc_id} attempt {job.attempts} worker {self.owner}",
            job_id=job_id,
        )
        with tracing.span("job.summarize", **{"job.id": job_id, "job.attempt": job.attempts}) as span:
            run = asyncio.current_task()
            heartbeat = asyncio.create_task(self._heartbeat(job_id, run))
            progress = job.progress
            try:
                with background():
                    flight = await self.summaries.start(record, job.language, pinned=True)
                    async with self.summaries.following(flight, record) as events:
                        async for ev in events:
                            advanced = progress.advance(ev)
                            span.add_event(type(ev).__name__)
                            changed, progress = advanced != progress, advanced
                            if isinstance(ev, SummaryComplete):
                                await self._record(
                                    job_id, functools.partial(self.store.finish, job_id, self.owner, progress)
                                )
                                event(
                                    "Background summary done",
                                    f"job_id={job_id} doc_id={job.doc_id} cached={ev.cached}",
                                    job_id=job_id,
                                )
                                return
                            if isinstance(ev, SummaryError):
                                await self._failed(job_id, ev)
                                return
                            if changed:
                                await self._record(
                                    job_id, functools.partial(self.store.record_progress, job_id, self.owner, progress)
                                )
            except asyncio.CancelledError:
                event(
                    "Background summary interrupted",
                    f"job_id={job_id}: resumed by the next worker to take it",
                    job_id=job_id,
                )
                raise
            finally:
                heartbeat.cancel()

    async def _record(self, job_id: str, write: Callable[[], bool]) -> None:
        """One of the job store's writes under this worker's lease, on the lane; the job as written
        is published to its followers here. The store's writes say only whether they wrote, so the
        row is read back with the write, once, however many follow it."""
        with contextlib.suppress(StoreUnavailable):  # the lease runs out; another worker finishes the job
            written = await self.lane.run(self._written, job_id, write)
            if written is not None:
                self.broadcast.publish(job_id, written)

    def _written(self, job_id: str, write: Callable[[], bool]) -> Job | None:
        return self.store.get(job_id) if write() else None

    async def _failed(self, job_id: str, error: SummaryError) -> None:
        failure = JobError(code=error.code, message=error.message, details=error.details)
        retryable = error.code in RETRYABLE
        await self._record(job_id, functools.partial(self.store.fail, job_id, self.owner, failure, retryable))
        event(
            "Background summary failed",
            f"job_id={job_id}: {error.code}: {error.message}",
            level=logging.WARNING,
            job_id=job_id,
        )

    async def _heartbeat(self, job_id: str, run: asyncio.Task | None) -> None:
        """Renew the lease; a job deleted or taken over meanwhile stops here."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                held = await self.lane.run(self.store.renew, job_id, self.owner, self.lease_s)
            except StoreUnavailable:
                continue
            if not held and run is not None:
                event(
                    "Background summary stopped",
                    f"job_id={job_id}: the job was deleted or its lease lost",
                    job_id=job_id,
                    level=logging.WARNING,
                )
                run.cancel()
                return

    async def _reap(self) -> None:
        """Queue again the jobs whose worker stopped renewing its lease, and the jobs the queue did
        not take when they were submitted."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                for job in await self.lane.run(self.store.expired):
                    if await self.lane.run(self.store.requeue_if_expired, job):
                        await self.lane.run(self._enqueue, job)
                        event(
                            "Background job taken over",
                            f"job_id={job.job_id}: worker {job.lease_owner} stopped renewing its lease; queued again",
                            job_id=job.job_id,
                            level=logging.WARNING,
                        )
                for job in await self.lane.run(self.store.unqueued, LOST_MESSAGE_S):
                    await self.lane.run(self._enqueue, job)
            except StoreUnavailable:
                continue
