"""Pre-computed summary jobs in the shared database, and the leases of the workers running them.

A worker claims a job by writing its name and a lease expiry in one conditional update, renews
the lease while it runs (heartbeat), and records the outcome only while it still holds the
lease. A job whose lease ran out — its worker died or hung — is handed back to the queue by
whichever worker notices first, and resumes from its memoised partial results.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import delete, func, insert, or_, select, update

from docassist.pipelines.errors import JobError
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import jobs
from docassist.pipelines.summaries.events import JobProgress

JobStatus = Literal["pending", "running", "done", "failed"]


@dataclass
class Job:
    job_id: str
    space_id: str
    doc_id: str
    language: str
    status: JobStatus
    progress: JobProgress = field(default_factory=JobProgress)
    error: JobError | None = None
    retryable: bool = False
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    queued_at: float | None = None


_COLUMNS = [jobs.c[name] for name in Job.__dataclass_fields__]


def _job(row: Any) -> Job:
    values = dict(zip(Job.__dataclass_fields__, row, strict=True))
    values["progress"] = JobProgress.model_validate_json(values["progress"])
    values["error"] = JobError.model_validate_json(values["error"]) if values["error"] else None
    values["retryable"] = bool(values["retryable"])
    return Job(**values)


def _encode(changes: dict[str, Any]) -> dict[str, Any]:
    """Column values from a job's fields, `updated_at` set to now."""
    out = dict(changes)
    if isinstance(out.get("progress"), JobProgress):
        out["progress"] = out["progress"].model_dump_json()
    if "error" in out:
        out["error"] = out["error"].model_dump_json() if out["error"] is not None else None
    if "retryable" in out:
        out["retryable"] = int(out["retryable"])
    out["updated_at"] = time.time()
    return out


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, space_id: str, doc_id: str, language: str) -> Job:
        now = time.time()
        job = Job(
            uuid.uuid4().hex, space_id, doc_id, language, "pending", JobProgress(), created_at=now, updated_at=now
        )
        values = {name: getattr(job, name) for name in Job.__dataclass_fields__}
        with self.db.begin() as conn:
            conn.execute(insert(jobs).values(**_encode(values)))
        return job

    def get(self, job_id: str) -> Job | None:
        with self.db.begin() as conn:
            row = conn.execute(select(*_COLUMNS).where(jobs.c.job_id == job_id)).first()
        return _job(row) if row else None

    def latest(self, space_id: str, doc_id: str) -> Job | None:
        query = (
            select(*_COLUMNS)
            .where(jobs.c.space_id == space_id, jobs.c.doc_id == doc_id)
            .order_by(jobs.c.created_at.desc())
            .limit(1)
        )
        with self.db.begin() as conn:
            row = conn.execute(query).first()
        return _job(row) if row else None

    def latest_by_document(self, space_id: str, doc_ids: list[str]) -> dict[str, Job]:
        """The latest job of each of these documents of a space."""
        query = select(*_COLUMNS).where(jobs.c.space_id == space_id).order_by(jobs.c.created_at)
        wanted, latest = set(doc_ids), {}
        with self.db.begin() as conn:
            for row in conn.execute(query):
                job = _job(row)
                if job.doc_id in wanted:
                    latest[job.doc_id] = job
        return latest

    def counts(self) -> dict[str, int]:
        """Jobs by status, every space together (what `/metrics` reports): one grouped query."""
        query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        with self.db.begin() as conn:
            return {status: n for status, n in conn.execute(query)}

    def mark_queued(self, job_id: str) -> bool:
        """The queue took the job now (the reaper queues again a job it never took)."""
        return self._update(job_id, None, queued_at=time.time())

    def reset(self, job_id: str) -> bool:
        """A failed job pending again as if new: no error, progress, lease or queue time."""
        return self._update(
            job_id,
            None,
            status="pending",
            error=None,
            retryable=False,
            progress=JobProgress(),
            lease_owner=None,
            lease_expires_at=None,
            queued_at=None,
        )

    def record_progress(self, job_id: str, owner: str | None, progress: JobProgress) -> bool:
        """The run's progress; with `owner`, only while that worker holds the lease."""
        return self._update(job_id, owner, progress=progress)

    def finish(self, job_id: str, owner: str | None, progress: JobProgress) -> bool:
        """Done, the lease given up; with `owner`, only while that worker holds it."""
        return self._update(job_id, owner, status="done", progress=progress, lease_owner=None)

    def fail(self, job_id: str, owner: str | None, error: JobError, retryable: bool) -> bool:
        """Failed with `error`, the lease given up; with `owner`, only while that worker holds it."""
        return self._update(job_id, owner, status="failed", retryable=retryable, error=error, lease_owner=None)

    def _update(self, job_id: str, owner: str | None, **changes: Any) -> bool:
        query = update(jobs).where(jobs.c.job_id == job_id)
        if owner is not None:
            query = query.where(jobs.c.lease_owner == owner)
        with self.db.begin() as conn:
            return conn.execute(query.values(**_encode(changes))).rowcount > 0

    def claim(self, job_id: str, owner: str, lease_s: float) -> Job | None:
        """Take a pending job, or a running one whose lease ran out: the job, or None when it is done,
        failed, gone, or another worker holds it."""
        now = time.time()
        takeable = or_(jobs.c.status == "pending", (jobs.c.status == "running") & (jobs.c.lease_expires_at < now))
        with self.db.begin() as conn:
            claimed = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, takeable)
                .values(
                    status="running",
                    lease_owner=owner,
                    lease_expires_at=now + lease_s,
                    attempts=jobs.c.attempts + 1,
                    updated_at=now,
                )
            ).rowcount
        return self.get(job_id) if claimed else None

    def renew(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Extend the lease; False when the worker no longer holds it."""
        with self.db.begin() as conn:
            return (
                conn.execute(
                    update(jobs)
                    .where(jobs.c.job_id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running")
                    .values(lease_expires_at=time.time() + lease_s)
                ).rowcount
                > 0
            )

    def expired(self) -> list[Job]:
        """Running jobs whose worker stopped renewing its lease."""
        query = select(*_COLUMNS).where(jobs.c.status == "running", jobs.c.lease_expires_at < time.time())
        with self.db.begin() as conn:
            return [_job(r) for r in conn.execute(query)]

    def requeue_if_expired(self, job: Job) -> bool:
        """Hand an expired job back to the queue; False when another worker got there first."""
        with self.db.begin() as conn:
            return (
                conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.job_id == job.job_id,
                        jobs.c.status == "running",
                        jobs.c.lease_expires_at == job.lease_expires_at,
                    )
                    .values(
                        status="pending",
                        lease_owner=None,
                        lease_expires_at=None,
                        progress=job.progress.model_copy(update={"resumed": True}).model_dump_json(),
                        updated_at=time.time(),
                    )
                ).rowcount
                > 0
            )

    def unqueued(self, lost_after_s: float) -> list[Job]:
        """Pending jobs the queue never took (it was down when they were submitted), or took so long
        ago that the message must be lost (a queue restarted without its data)."""
        lost = time.time() - lost_after_s
        query = select(*_COLUMNS).where(
            jobs.c.status == "pending", or_(jobs.c.queued_at.is_(None), jobs.c.queued_at < lost)
        )
        with self.db.begin() as conn:
            return [_job(r) for r in conn.execute(query)]

    def unfinished(self) -> list[Job]:
        query = select(*_COLUMNS).where(jobs.c.status.in_(("pending", "running"))).order_by(jobs.c.created_at)
        with self.db.begin() as conn:
            return [_job(r) for r in conn.execute(query)]

    def forget_document(self, space_id: str, doc_id: str) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(jobs).where(jobs.c.space_id == space_id, jobs.c.doc_id == doc_id))
