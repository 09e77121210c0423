"""Jobs: a summary job or an upload job, read, followed until it ends, or retried.

A job of a space the caller cannot reach is `NotFound`, whether or not it exists: a job id is not
a capability. Jobs are read from the database (on the storage lane), so a job that runs on
another backend moves too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from docassist.pipelines.documents.upload_store import UploadJob, UploadStore
from docassist.pipelines.lanes import Lane
from docassist.pipelines.summaries.jobs.runner import JobRunner
from docassist.pipelines.summaries.jobs.store import Job

JOB_POLL_S = 0.5  # how often a followed job is read again


class Jobs:
    def __init__(self, runner: JobRunner, uploads: UploadStore, lane: Lane) -> None:
        self.runner, self.uploads, self.lane = runner, uploads, lane

    async def job(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        """A summary job or an upload job of one of `spaces` (None: any), else `NotFound`."""

        def find() -> Job | UploadJob:
            upload = self.uploads.get(job_id)
            if upload is not None and (spaces is None or upload.space_id in spaces):
                return upload
            return self.runner.job(job_id, spaces)

        return await self.lane.run(find)

    async def events(self, job_id: str, spaces: frozenset[str] | None) -> AsyncIterator[Job | UploadJob]:
        """The job now (`NotFound` at once, before any response), then each time it changes,
        until it has ended."""
        first = await self.job(job_id, spaces)

        async def follow() -> AsyncIterator[Job | UploadJob]:
            job = first
            yield job
            while job.status in ("pending", "running"):
                await asyncio.sleep(JOB_POLL_S)
                latest = await self.job(job_id, spaces)
                if (latest.status, latest.progress, latest.updated_at) != (job.status, job.progress, job.updated_at):
                    job = latest
                    yield job

        return follow()

    async def retry(self, job_id: str, spaces: frozenset[str] | None) -> Job | UploadJob:
        """Queue a failed summary job again. An upload job comes back as it is: its bytes are not
        kept once it ends, so a failed upload is retried by uploading the file again."""
        found = await self.job(job_id, spaces)
        if isinstance(found, UploadJob):
            return found
        return await self.lane.run(self.runner.retry, found)
