"""Upload jobs in the shared database: what an upload answered with 202 is doing, for any backend.

The process running an upload writes its stage and progress here (at most a few times a second)
and touches `updated_at` while it waits in the queue, so a row nobody has touched for a while
has lost its process (it crashed or was killed) and is marked failed by whoever notices. Cancelling
is a conditional update too: the runner's next progress write finds the row no longer running and
stops, wherever it runs. Each write of a job's state returns the job as written, which the runner
also pushes to the job's followers in its own process (`pipelines/broadcast.py`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, insert, select, update

from docassist.pipelines.errors import JobError
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import uploads

UploadStatus = Literal["pending", "running", "done", "failed", "cancelled"]
UploadStage = Literal["queued", "reading", "ocr", "chunking", "embedding", "writing", "done"]
ACTIVE: tuple[UploadStatus, ...] = ("pending", "running")


class UploadProgress(BaseModel):
    """Where an upload is: `done` of `total` pages OCR'd or chunks embedded (0 of 0 where the
    stage has no count), and the seconds left at the rate so far."""

    stage: UploadStage = "queued"
    done: int = 0
    total: int = 0
    eta_s: float | None = None


class UploadOutcome(BaseModel):
    """The indexed document, as a synchronous `/ingest` answers it."""

    language: str
    chunks: int
    tokens: int
    duplicate: bool


@dataclass
class UploadJob:
    job_id: str
    space_id: str
    doc_id: str
    filename: str
    status: UploadStatus
    progress: UploadProgress
    result: UploadOutcome | None
    error: JobError | None
    generate_summary: bool
    summary_job_id: str | None
    owner: str
    created_at: float
    updated_at: float


_FIELDS = list(UploadJob.__dataclass_fields__)
_COLUMNS = [uploads.c[name] for name in _FIELDS]


def _column(value: Any) -> Any:
    """A field's value as its column holds it: the models as JSON."""
    return value.model_dump_json() if isinstance(value, BaseModel) else value


def _job(row: Any) -> UploadJob:
    values = dict(zip(_FIELDS, row, strict=True))
    values["progress"] = UploadProgress.model_validate_json(values["progress"])
    values["result"] = UploadOutcome.model_validate_json(values["result"]) if values["result"] else None
    values["error"] = JobError.model_validate_json(values["error"]) if values["error"] else None
    values["generate_summary"] = bool(values["generate_summary"])
    return UploadJob(**values)


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, space_id: str, doc_id: str, filename: str, generate_summary: bool, owner: str) -> UploadJob:
        now = time.time()
        job = UploadJob(
            uuid.uuid4().hex, space_id, doc_id, filename, "pending", UploadProgress(), None, None,
            generate_summary, None, owner, now, now,
        )  # fmt: skip
        values = {name: getattr(job, name) for name in _FIELDS}
        values |= {"progress": job.progress.model_dump_json(), "generate_summary": int(generate_summary)}
        with self.db.begin() as conn:
            conn.execute(insert(uploads).values(**values))
        return job

    def get(self, job_id: str) -> UploadJob | None:
        with self.db.begin() as conn:
            row = conn.execute(select(*_COLUMNS).where(uploads.c.job_id == job_id)).first()
        return _job(row) if row else None

    def counts(self) -> dict[str, int]:
        """Upload jobs by status, every space together (what `/metrics` reports): one grouped query."""
        query = select(uploads.c.status, func.count()).group_by(uploads.c.status)
        with self.db.begin() as conn:
            return {status: n for status, n in conn.execute(query)}

    def advance(self, job: UploadJob, progress: UploadProgress) -> UploadJob | None:
        """Record progress; None when the job is no longer active (it was cancelled)."""
        return self._write(job, status="running", progress=progress)

    def touch(self, job_ids: list[str]) -> None:
        """Say these jobs' process is alive (a queued job has no progress to write)."""
        if not job_ids:
            return
        query = update(uploads).where(uploads.c.job_id.in_(job_ids), uploads.c.status.in_(ACTIVE))
        with self.db.begin() as conn:
            conn.execute(query.values(updated_at=time.time()))

    def finish(self, job: UploadJob, outcome: UploadOutcome, summary_job_id: str | None) -> UploadJob | None:
        """Done, unless it was cancelled meanwhile (None: the caller removes what it wrote)."""
        progress = UploadProgress(stage="done", done=outcome.chunks, total=outcome.chunks, eta_s=0.0)
        return self._write(job, status="done", progress=progress, result=outcome, summary_job_id=summary_job_id)

    def fail(self, job: UploadJob, error: JobError, status: UploadStatus = "failed") -> UploadJob | None:
        """Ended with `error`, unless it had ended already (None)."""
        return self._write(job, status=status, error=error)

    def _write(self, job: UploadJob, **changes: Any) -> UploadJob | None:
        """`job` with `changes`, written while it is active: the job as written, else None."""
        written = replace(job, **changes, updated_at=time.time())
        values = {name: _column(getattr(written, name)) for name in (*changes, "updated_at")}
        query = update(uploads).where(uploads.c.job_id == job.job_id, uploads.c.status.in_(ACTIVE))
        with self.db.begin() as conn:
            return written if conn.execute(query.values(**values)).rowcount > 0 else None

    def active(self, space_id: str, doc_ids: Sequence[str]) -> UploadJob | None:
        """An upload still running or waiting of one of the documents, if any (the newest)."""
        where = (uploads.c.space_id == space_id, uploads.c.doc_id.in_(list(doc_ids)), uploads.c.status.in_(ACTIVE))
        query = select(*_COLUMNS).where(*where).order_by(uploads.c.created_at.desc()).limit(1)
        with self.db.begin() as conn:
            row = conn.execute(query).first()
        return _job(row) if row else None

    def cancel_document(self, space_id: str, doc_id: str) -> list[str]:
        """Cancel the document's active uploads; the job ids cancelled."""
        where = (uploads.c.space_id == space_id, uploads.c.doc_id == doc_id, uploads.c.status.in_(ACTIVE))
        error = JobError(code="cancelled", message="the document was deleted while it was being ingested")
        with self.db.begin() as conn:
            ids = [r[0] for r in conn.execute(select(uploads.c.job_id).where(*where))]
            if ids:
                conn.execute(
                    update(uploads)
                    .where(uploads.c.job_id.in_(ids), uploads.c.status.in_(ACTIVE))
                    .values(status="cancelled", error=error.model_dump_json(), updated_at=time.time())
                )
        return ids

    def reap(self, silent_for_s: float, gone: Callable[[str], bool]) -> list[UploadJob]:
        """Fail the active uploads whose process is gone (`gone(owner)`, or nobody has touched
        them for `silent_for_s`): their bytes went with it. The jobs failed."""
        lost = time.time() - silent_for_s
        query = select(*_COLUMNS).where(uploads.c.status.in_(ACTIVE))
        error = JobError(
            code="upload_lost",
            message="the service stopped while this upload was being ingested; nothing was stored — upload it again",
        )
        with self.db.begin() as conn:
            stale = [j for j in map(_job, conn.execute(query)) if j.updated_at < lost or gone(j.owner)]
            for job in stale:
                conn.execute(
                    update(uploads)
                    .where(uploads.c.job_id == job.job_id, uploads.c.updated_at == job.updated_at)
                    .values(status="failed", error=error.model_dump_json(), updated_at=time.time())
                )
        return stale
