"""A job's progress reaches its followers in the process that runs it the moment it is written,
without reading the database; a job another process runs is still followed, from the database.
(An upload followed in the service's own process: tests/test_upload_jobs.py.)

Real parts over SQLite: the upload store and runner, the summary job runner, and `Jobs`, which
`/jobs/{id}/events` relays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from huey import SqliteHuey

from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.documents.upload_store import UploadJob, UploadProgress, UploadStore
from docassist.pipelines.documents.uploads import UploadRunner
from docassist.pipelines.errors import JobError
from docassist.pipelines.lanes import Lane
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.settings import Routing
from docassist.pipelines.storage.database import Database
from docassist.pipelines.summaries.jobs.runner import JobRunner
from docassist.pipelines.summaries.jobs.service import JOB_POLL_S, Jobs
from docassist.pipelines.summaries.jobs.store import Job, JobStore
from docassist.pipelines.summaries.runs.board import LocalFlightBoard
from docassist.pipelines.summaries.runs.service import SummaryService
from docassist.pipelines.summaries.runs.store import SummaryStore


class CountingUploadStore(UploadStore):
    """The upload store, counting the jobs read from it."""

    reads = 0

    def get(self, job_id: str) -> UploadJob | None:
        self.reads += 1
        return super().get(job_id)


class Parts:
    def __init__(self, tmp_path: Path) -> None:
        db = Database.for_data_dir(None, tmp_path)
        db.migrate()
        self.storage, self.uploads_lane = Lane("storage", 2), Lane("uploads", 1, queue=2)
        self.store = CountingUploadStore(db)
        # no upload runs in this process (the jobs followed here are another's): no ingestor
        no_ingestor = None
        self.uploads = UploadRunner(
            no_ingestor, Registry(db), self.store, self.uploads_lane, self.storage, lambda _: None  # type: ignore[arg-type]
        )  # fmt: skip
        summaries = SummaryService(
            SummaryStore(db), LLMCaller(Limits()), {}, Routing(map="m", reduce="m", answer="m"), Registry(db),
            LocalFlightBoard(), self.storage,
        )  # fmt: skip
        huey = SqliteHuey("jobs", filename=str(tmp_path / "queue.sqlite3"), results=False)
        self.runner = JobRunner(huey, JobStore(db), Registry(db), summaries, self.storage, workers=0)
        self.jobs = Jobs(self.runner, self.uploads, self.storage)

    def close(self) -> None:
        self.uploads_lane.close()
        self.storage.close()


def test_an_upload_another_process_runs_is_followed_from_the_database(tmp_path: Path):
    parts = Parts(tmp_path)
    job = parts.store.create("s", "d1", "a.txt", False, "another-host:1")

    def elsewhere() -> None:
        """Another backend's runner, writing straight to the shared table."""
        running = job
        for stage in ("reading", "embedding"):
            time.sleep(2 * JOB_POLL_S)
            written = parts.store.advance(running, UploadProgress(stage=stage, done=1, total=1))
            assert written is not None
            running = written
        time.sleep(2 * JOB_POLL_S)
        parts.store.fail(running, JobError(code="upload_lost", message="its process stopped"))

    async def follow() -> list[UploadJob]:
        events = await parts.jobs.events(job.job_id, None)
        writer = asyncio.create_task(asyncio.to_thread(elsewhere))
        seen = [job async for job in events]
        await writer
        return seen

    try:
        seen = asyncio.run(follow())
    finally:
        parts.close()
    assert [(j.status, j.progress.stage) for j in seen] == [
        ("pending", "queued"),
        ("running", "reading"),
        ("running", "embedding"),
        ("failed", "embedding"),
    ]
    assert parts.store.reads > 4, "read from the database while it ran elsewhere"


def test_a_summary_job_claimed_here_reaches_its_follower_at_once(tmp_path: Path):
    parts = Parts(tmp_path)
    job = parts.runner.store.create("s", "gone", "en")  # its document was never stored: it fails

    async def follow() -> tuple[list[Job], float]:
        events = await parts.jobs.events(job.job_id, None)
        seen = [await anext(events)]
        started = time.monotonic()
        following = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)  # the follower listens before the job is claimed
        await parts.runner._attempt(job.job_id)
        seen.append(await following)
        seen += [j async for j in events]
        return seen, time.monotonic() - started

    try:
        seen, took_s = asyncio.run(follow())
    finally:
        parts.close()
    assert [j.status for j in seen] == ["pending", "running", "failed"]
    assert seen[-1].error is not None and seen[-1].error.code == "not_found"
    assert took_s < JOB_POLL_S, "pushed by the runner, not found by the next database read"
