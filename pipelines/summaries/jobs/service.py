"""Jobs: a summary job or an upload job, read, followed until it ends, or retried.

A job of a space the caller cannot reach is `NotFound`, whether or not it exists: a job id is not
a capability. Jobs are read from the database (on the storage lane), so a job that runs on
another backend moves too. A job this process runs is followed from its runner's broadcast: each
state its runner writes arrives at once, and the database is not read for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from docassist.pipelines.broadcast import Broadcast, Follower
from docassist.pipelines.documents.upload_store import UploadJob
from docassist.pipelines.documents.uploads import UploadRunner
from docassist.pipelines.lanes import Lane
from docassist.pipelines.summaries.jobs.runner import JobRunner
from docassist.pipelines.summaries.jobs.store import Job

JOB_POLL_S = 0.5  # how often a followed job that runs in another process is read again


class Jobs:
    def __init__(self, runner: JobRunner, uploads: UploadRunner, lane: Lane) -> None:
        self.runner, self.uploads, self.lane = runner, uploads, lane

    async def job(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        """A summary job or an upload job of one of `spaces` (None: any), else `NotFound`."""

        def find() -> Job | UploadJob:
            upload = self.uploads.store.get(job_id)
            if upload is not None and (spaces is None or upload.space_id in spaces):
                return upload
            return self.runner.job(job_id, spaces)

        return await self.lane.run(find)

    async def events(self, job_id: str, spaces: frozenset[str] | None) -> AsyncIterator[Job | UploadJob]:
        """The job now (`NotFound` at once, before any response), then each time it changes,
        until it has ended."""
        first = await self.job(job_id, spaces)
        broadcast: Broadcast[Job] | Broadcast[UploadJob] = (
            self.uploads.broadcast if isinstance(first, UploadJob) else self.runner.broadcast
        )

        async def follow() -> AsyncIterator[Job | UploadJob]:
            job = first
            yield job
            with broadcast.follow(job_id) as follower:
                while job.status in ("pending", "running"):
                    latest = await self._next(job_id, spaces, broadcast, follower)
                    if latest is not None and _moved(job, latest):
                        job = latest
                        yield job

        return follow()

    async def _next(
        self, job_id: str, spaces: frozenset[str] | None, broadcast: Broadcast, follower: Follower
    ) -> Job | UploadJob | None:
        """The job's next state: pushed by its runner while this process runs it; else — another
        process runs it (`docassist worker`, another backend), none has taken it yet, or it stopped
        running here — read from the database every JOB_POLL_S, since no other process tells this one
        what it writes."""
        pushed = await follower.next(JOB_POLL_S)
        if pushed is not None or broadcast.runs(job_id):
            return pushed
        return await self.job(job_id, spaces)

    async def retry(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        """Queue a failed summary job again. An upload job comes back as it is: its bytes are not
        kept once it ends, so a failed upload is retried by uploading the file again."""
        found = await self.job(job_id, spaces)
        if isinstance(found, UploadJob):
            return found
        return await self.lane.run(self.runner.retry, found)


def _moved(before: Job | UploadJob, after: Job | UploadJob) -> bool:
    return (after.status, after.progress, after.updated_at) != (before.status, before.progress, before.updated_at)
