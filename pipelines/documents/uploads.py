"""Uploads as jobs: every upload runs as one, and a request waits only a few seconds for it.

`submit` refuses what it can before any work (kind, size, a full queue or the space's full share
of it: 429), answers a known document as a duplicate, joins an upload of the same bytes already
running, and otherwise writes an upload job and hands the bytes to the upload queue
(`upload_queue.py`), which runs them on the uploads lane when the space's turn comes. The caller
then waits at most `INGEST_WAIT_S` (`wait`): an upload done by then is answered as it always was;
a longer one gets its job, whose stage and progress (`reading`, `ocr` pages, `chunking`,
`embedding` chunks, `writing`) are written to the database as it goes, for `/jobs/{id}` on any
backend, and each state written is pushed at once to the job's followers in this process
(`broadcast`), which need not read the database for it.

A job stops at its next step, storing nothing, when its document is deleted (`cancel`, or a
cancel written by another backend, seen at the next progress write) or when the client that
waited for it left before it was answered. Jobs whose process died are failed by the next
`reap` (a start, and every `touch`), since their bytes died with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from docassist.pipelines.broadcast import Broadcast
from docassist.pipelines.documents.catalog import Catalog
from docassist.pipelines.documents.ingestion import Admitted, Ingestor, IngestResult
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.documents.upload_queue import UploadQueue
from docassist.pipelines.documents.upload_store import (
    UploadJob,
    UploadOutcome,
    UploadProgress,
    UploadStage,
    UploadStore,
)
from docassist.pipelines.errors import Cancelled, DocassistError, JobError, NotReady
from docassist.pipelines.lanes import Lane
from docassist.pipelines.logs import event
from docassist.pipelines.search.scope import TAGS_KEY, tag_payload

REPORT_EVERY_S = 0.5  # progress writes per job, at most
TOUCH_EVERY_S = 10  # how often a process says its queued jobs are alive
LOST_AFTER_S = 60  # an active job untouched this long has lost its process


def process_name(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid or os.getpid()}"[:64]


def gone_here(owner: str) -> bool:
    """True for a process of this machine that no longer runs (another machine's cannot be asked)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname()[: 64 - len(pid) - 1] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, as another user
        return False
    return False


@dataclass
class Running:
    """An upload being processed by this process."""

    job: UploadJob
    stop: threading.Event
    future: asyncio.Future[IngestResult]


@dataclass
class Submitted:
    """What `submit` hands back: a known document (`duplicate`), or the upload's job."""

    duplicate: IngestResult | None = None
    running: Running | None = None
    joined: bool = False  # the same bytes were being uploaded already: this upload is their duplicate


@dataclass
class _Reporter:
    """Progress of one job as the ingestor reports it, written at most every REPORT_EVERY_S,
    each stage change at once; a write that finds the job cancelled stops the ingest. Every state
    of the job written (`write`) is published to its followers in this process."""

    store: UploadStore
    broadcast: Broadcast[UploadJob]
    job: UploadJob  # as last written
    stop: threading.Event
    _last: float = 0.0
    _stage: UploadStage = "queued"
    _stage_began: float = field(default_factory=time.monotonic)

    def __call__(self, stage: UploadStage, done: int, total: int) -> None:
        now = time.monotonic()
        changed = stage != self._stage
        if changed:
            self._stage, self._stage_began = stage, now
        if not changed and now - self._last < REPORT_EVERY_S:
            return
        self._last = now
        elapsed = now - self._stage_began
        eta = (total - done) * elapsed / done if done and total else None
        progress = UploadProgress(stage=stage, done=done, total=total, eta_s=None if eta is None else round(eta, 1))
        if not self.write(lambda job: self.store.advance(job, progress)):
            self.stop.set()

    def write(self, change: Callable[[UploadJob], UploadJob | None]) -> bool:
        """`change` of the job, written to the database and published; False when the job was no
        longer active, which writes nothing."""
        written = change(self.job)
        if written is None:
            return False
        self.job = written
        self.broadcast.publish(written.job_id, written)
        return True


class UploadRunner:
    def __init__(
        self,
        ingestor: Ingestor,
        registry: Registry,
        store: UploadStore,
        uploads: Lane,
        storage: Lane,
        summarize: Callable[[DocumentRecord], str | None],
        per_space: int | None = None,
    ) -> None:
        """`summarize`: the id of the summary job an upload that asked for one gets, if it needs
        one (the rule is the jobs runner's: `JobRunner.summary_job_for`); `per_space`: the upload
        places one space may hold (`UPLOADS_PER_SPACE`; None: half of them)."""
        self.ingestor, self.registry, self.store = ingestor, registry, store
        self.queue, self.storage = UploadQueue(uploads, per_space), storage
        self.summarize = summarize
        self.owner = process_name()
        self._running: dict[tuple[str, str], Running] = {}
        self.broadcast: Broadcast[UploadJob] = Broadcast()  # the states of the jobs running here
        self._keeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ submitting and waiting
    async def submit(
        self,
        space_id: str,
        filename: str,
        data: bytes,
        generate_summary: bool,
        replaces: str | None = None,
        tags: tuple[str, ...] | None = None,
    ) -> Submitted:
        """The upload queued as a job; `replaces`: the id of the document it is the next version of;
        `tags` (checked): the document's tags, set by the job before it reports done."""
        admitted = await self.storage.run(self.ingestor.admit, space_id, filename, data, replaces)
        doc_id = admitted.doc_id
        running = self._running.get((space_id, doc_id))
        if running is not None and replaces is not None:  # one version at a time
            raise NotReady(
                f"a version of document {doc_id} is still being read; its upload is job {running.job.job_id}",
                job_id=running.job.job_id,
                doc_id=doc_id,
            )
        if running is not None:  # the same bytes, uploaded again while the first is processed
            return Submitted(running=running, joined=True)
        existing = await self.storage.run(self.registry.get, space_id, doc_id) if replaces is None else None
        if existing is not None:
            return Submitted(duplicate=IngestResult(existing, duplicate=True))
        self.queue.check(space_id)
        job = await self.storage.run(self.store.create, space_id, doc_id, filename, generate_summary, self.owner)
        stop = threading.Event()
        self.broadcast.publish(job.job_id, job)  # before its work can publish anything
        try:
            future = self.queue.submit(space_id, self._work, job, admitted, data, stop, tags)
        except DocassistError as exc:  # the queue, or the space's share, filled while the job was written
            self.broadcast.end(job.job_id)
            await self.storage.run(self.store.fail, job, _error(exc))
            raise
        running = Running(job, stop, future)
        self._running[(space_id, doc_id)] = running
        future.add_done_callback(lambda _: self._ended(running))
        event(
            "[INGEST] Upload accepted",
            f"job_id={job.job_id} doc_id={doc_id} space={space_id} file={filename!r} {len(data):,} bytes",
            job_id=job.job_id,
            doc_id=doc_id,
        )
        return Submitted(running=running)

    async def wait(self, running: Running, timeout_s: float | None) -> IngestResult | None:
        """The upload's result if it ends within `timeout_s` (None: however long it takes), else
        None: it runs on as a job. A waiter that is cancelled (its client left before it was
        answered) stops the upload: nobody knows its job."""
        try:
            return await asyncio.wait_for(asyncio.shield(running.future), timeout_s)
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            running.stop.set()
            raise

    async def job(self, job_id: str) -> UploadJob | None:
        return await self.storage.run(self.store.get, job_id)

    def _ended(self, running: Running) -> None:
        job = running.job
        self._running.pop((job.space_id, job.doc_id), None)
        self.broadcast.end(job.job_id)

    # ------------------------------------------------------------------ the work, on the uploads lane
    def _work(
        self, job: UploadJob, admitted: Admitted, data: bytes, stop: threading.Event, tags: tuple[str, ...] | None
    ) -> IngestResult:
        report = _Reporter(self.store, self.broadcast, job, stop)
        try:
            result = self.ingestor.ingest(job.space_id, job.filename, data, stop.is_set, report, admitted)
            if tags is not None:  # before the job says done: whoever follows it finds the document tagged
                self._tag(result.record, tags)
            outcome = UploadOutcome(
                language=result.record.language,
                chunks=result.record.chunks,
                tokens=result.record.tokens,
                duplicate=result.duplicate,
            )
            summary_job_id = self.summarize(result.record) if job.generate_summary else None
            if not report.write(lambda job: self.store.finish(job, outcome, summary_job_id)):  # deleted meanwhile
                self.ingestor.delete(job.space_id, job.doc_id)
                raise Cancelled("the document was deleted while it was being ingested; nothing was stored")
            return result
        except Cancelled as exc:
            report.write(functools.partial(self.store.fail, error=_error(exc), status="cancelled"))
            raise
        except DocassistError as exc:
            report.write(functools.partial(self.store.fail, error=_error(exc)))
            raise
        except Exception as exc:
            unexpected = JobError(code="internal_error", message="the upload failed unexpectedly")
            report.write(functools.partial(self.store.fail, error=unexpected))
            event("[INGEST] Upload failed", f"job_id={job.job_id}: {type(exc).__name__}: {exc}", level=logging.ERROR)
            raise

    def _tag(self, record: DocumentRecord, tags: tuple[str, ...]) -> None:
        """The document's tags, replaced: on its chunks first (a scope by tag finds them), then its row."""
        self.ingestor.store.set_payload({TAGS_KEY: tag_payload(tags)}, record.space_id, record.doc_id)
        Catalog(self.registry.db).describe(record.space_id, record.doc_id, record.filename, tags, None, False)

    # ------------------------------------------------------------------ cancelling
    async def cancel(self, space_id: str, doc_id: str) -> bool:
        """Stop the document's uploads, here or on another backend, and wait for one running here
        to let go; True when there was one."""
        cancelled = await self.storage.run(self.store.cancel_document, space_id, doc_id)
        for job_id in cancelled:  # its followers here read the cancel at once, not at the job's next step
            self.broadcast.end(job_id)
        running = self._running.get((space_id, doc_id))
        if running is not None:
            running.stop.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(running.future)
        if cancelled:
            event("[INGEST] Upload cancelled", f"doc_id={doc_id} space={space_id}: its document was deleted")
        return bool(cancelled) or running is not None

    # ------------------------------------------------------------------ keeping the table honest
    async def start(self) -> int:
        """Fail what earlier processes left active; then keep this process's jobs marked alive."""
        lost = await self.storage.run(self.store.reap, LOST_AFTER_S, gone_here)
        self._keeper = asyncio.create_task(self._keep())
        return len(lost)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_EVERY_S)
            with contextlib.suppress(Exception):  # the database is down: the next round tries again
                ids = [r.job.job_id for r in self._running.values()]
                await self.storage.run(self.store.touch, ids)
                for job in await self.storage.run(self.store.reap, LOST_AFTER_S, gone_here):
                    event("[INGEST] Upload lost", f"job_id={job.job_id}: its process stopped", level=logging.WARNING)

    async def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        for running in list(self._running.values()):
            running.stop.set()


def _error(exc: DocassistError) -> JobError:
    return JobError.of(exc)
