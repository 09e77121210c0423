"""Jobs: pre-computed summaries and uploads that run on after their request was answered."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter

from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.held import HeldEventSourceResponse
from docassist.api.schemas import (
    JobResponse,
    UploadJobResponse,
    error_responses,
)
from docassist.pipelines.documents.upload_store import UploadJob
from docassist.pipelines.summaries.jobs.store import Job

router = APIRouter(tags=["jobs"])
_EVENT_OF = {"done": "complete", "failed": "error", "cancelled": "error"}
_ERRORS = error_responses(401, 404, 422, 503)
_EVENTS = {
    "description": "server-sent events: `progress` whenever the job moves, then `complete` (done) or `error` "
    "(failed, cancelled); each `data:` line is the job as `GET /jobs/{job_id}` answers it",
    "content": {"text/event-stream": {}},
}


def upload_response(job: UploadJob) -> UploadJobResponse:
    return UploadJobResponse.model_validate(job, from_attributes=True)


def job_response(job: Job | UploadJob) -> JobResponse | UploadJobResponse:
    if isinstance(job, UploadJob):
        return upload_response(job)
    return JobResponse.model_validate(job, from_attributes=True)


@router.get("/jobs/{job_id}", response_model=JobResponse | UploadJobResponse, responses=_ERRORS)
async def get_job(job_id: str, assistant: AssistantDep, access: AccessDep) -> JobResponse | UploadJobResponse:
    """A summary job (`kind: summary`: `pending`, `running`, `done`, `failed`) or an upload job
    (`kind: upload`, also `cancelled`; its `stage` and pages or chunks done of total), with the
    error of a failed one. A job of a space the key cannot reach is `not_found`, exactly like a
    job that does not exist."""
    return job_response(await assistant.job(job_id, access.spaces))


@router.get("/jobs/{job_id}/events", responses={200: _EVENTS, **error_responses(401, 404, 422, 429, 503)})
async def job_events(job_id: str, assistant: AssistantDep, access: AccessDep) -> HeldEventSourceResponse:
    """The job as it moves, as server-sent events, until it ends: what the page follows an upload with.
    A key holds at most `STREAMS_PER_KEY` of these open at once (429 past them): each is a
    connection, and one key's streams must not take the connections every other caller needs."""
    permit = assistant.admit("stream", access.holder)
    try:
        following = await assistant.job_events(job_id, access.spaces)
    except BaseException:
        permit.release()
        raise

    async def events() -> AsyncIterator[dict[str, str]]:
        async for job in following:
            name = _EVENT_OF.get(job.status, "progress")
            yield {"event": name, "data": job_response(job).model_dump_json()}

    return HeldEventSourceResponse(permit, events())


@router.post("/jobs/{job_id}/retry", response_model=JobResponse | UploadJobResponse, responses=_ERRORS)
async def retry_job(job_id: str, assistant: AssistantDep, access: AccessDep) -> JobResponse | UploadJobResponse:
    """Queue a failed summary job again; other jobs are returned as they are (a failed upload is
    retried by uploading the file again: its bytes are not kept)."""
    return job_response(await assistant.retry_job(job_id, access.spaces))
