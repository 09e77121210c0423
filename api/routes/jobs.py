"""Background jobs (pre-computed summaries)."""

from __future__ import annotations

from fastapi import APIRouter

from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.schemas import JobProgressOut, JobResponse, error_responses
from docassist.pipelines.summaries.job_store import Job

router = APIRouter(tags=["jobs"])
_ERRORS = error_responses(401, 404, 422, 503)


def job_response(job: Job) -> JobResponse:
    return JobResponse(
        job_id=job.job_id,
        doc_id=job.doc_id,
        space_id=job.space_id,
        language=job.language,
        status=job.status,
        progress=JobProgressOut.model_validate(job.progress.model_dump()),
        error=job.error,
        retryable=job.retryable,
        attempts=job.attempts,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


@router.get("/jobs/{job_id}", response_model=JobResponse, responses=_ERRORS)
async def get_job(job_id: str, assistant: AssistantDep, access: AccessDep) -> JobResponse:
    """Status (`pending`, `running`, `done`, `failed`), progress and, on failure, the error. A job of
    a space the key cannot reach is `not_found`, exactly like a job that does not exist."""
    return job_response(await assistant.job(job_id, access.spaces))


@router.post("/jobs/{job_id}/retry", response_model=JobResponse, responses=_ERRORS)
async def retry_job(job_id: str, assistant: AssistantDep, access: AccessDep) -> JobResponse:
    """Queue a failed job again; other jobs are returned as they are."""
    return job_response(await assistant.retry_job(job_id, access.spaces))
