"""Background jobs (pre-computed summaries)."""

from __future__ import annotations

from fastapi import APIRouter

from docassist.api.auth import Access
from docassist.api.deps import AccessDep, RuntimeDep
from docassist.api.schemas import ErrorResponse, JobResponse
from docassist.pipelines.errors import NotFound
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.summaries.store import Job

router = APIRouter(tags=["jobs"])


def _visible(runtime: Runtime, access: Access, job_id: str) -> Job:
    job = runtime.summary_store.get_job(job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}", job_id=job_id)
    access.check_space(job.space_id)
    return job


@router.get("/jobs/{job_id}", response_model=JobResponse, responses={404: {"model": ErrorResponse}})
async def get_job(job_id: str, runtime: RuntimeDep, access: AccessDep) -> JobResponse:
    """Status (`pending`, `running`, `done`, `failed`), progress and, on failure, the error."""
    return JobResponse(**_visible(runtime, access, job_id).public())


@router.post("/jobs/{job_id}/retry", response_model=JobResponse, responses={404: {"model": ErrorResponse}})
async def retry_job(job_id: str, runtime: RuntimeDep, access: AccessDep) -> JobResponse:
    """Queue a failed job again; other jobs are returned as they are."""
    _visible(runtime, access, job_id)
    return JobResponse(**runtime.jobs.retry(job_id).public())
