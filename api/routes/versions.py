"""New versions of a document under its id, and the text each version had."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.routes.documents import SpaceQuery, ingest_response, read_limited
from docassist.api.schemas import IngestResponse, UploadJobResponse, VersionOut, error_responses
from docassist.pipelines.documents.extract import SUPPORTED
from docassist.pipelines.spaces import SPACE_PATTERN

router = APIRouter(tags=["documents"])
_READ = error_responses(401, 403, 404, 409, 422, 503)


@router.put(
    "/documents/{doc_id}",
    response_model=IngestResponse,
    responses={
        202: {"model": UploadJobResponse, "description": "still running: its job"},
        **error_responses(401, 403, 404, 408, 409, 413, 415, 422, 429, 503),
    },
)
async def new_version(
    doc_id: str,
    request: Request,
    assistant: AssistantDep,
    access: AccessDep,
    file: Annotated[UploadFile, File(description=f"{' '.join(sorted(SUPPORTED))}; another kind than before too")],
    space_id: Annotated[str, Form(pattern=SPACE_PATTERN)] = "default",
    generate_summary: Annotated[bool, Form()] = False,
    wait: Annotated[bool, Form(description="answer only when the upload has ended, however long it takes")] = False,
    tags: Annotated[
        list[str] | None,
        Form(description="the document's tags, one per field (repeat it); set once the upload has ended"),
    ] = None,
) -> IngestResponse | JSONResponse:
    """The file as the document's next version, under the same id, uploaded as `/ingest` uploads
    (200 within `INGEST_WAIT_S` or with `wait=true`, else 202 with its job). Only the chunks whose
    text changed are embedded again (`reused_chunks`: the others); the replaced version's chunks
    leave the index once the new ones are in, and its text stays readable
    (`/documents/{id}/versions/{n}/text`). The summary is made again where the replaced version
    had one. The same bytes as the current version change nothing (`duplicate: true`); a file of
    another kind is taken and said (`replaced_kind`). A document of another space is 404, and
    nothing changes."""
    access.check_space(space_id, "editor")
    filename = file.filename or ""
    assistant.check_file(filename)
    data = await read_limited(file, assistant.settings.max_upload_bytes)
    done = await assistant.replace(space_id, doc_id, filename, data, generate_summary, wait, tags)
    await record(request, access, "new_version", space_id=space_id, doc_id=doc_id[:64], detail=filename[:200])
    return ingest_response(done)


@router.get("/documents/{doc_id}/versions", response_model=list[VersionOut], responses=_READ)
async def list_versions(
    doc_id: str, assistant: AssistantDep, access: AccessDep, space_id: SpaceQuery = "default"
) -> list[VersionOut]:
    """Every version of the document, oldest first: when it came, its file's name, SHA-256 and size."""
    access.check_space(space_id)
    return [VersionOut.model_validate(v, from_attributes=True) for v in await assistant.versions(space_id, doc_id)]


@router.get(
    "/documents/{doc_id}/versions/{n}/text",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **_READ},
)
async def version_text(
    doc_id: str,
    n: Annotated[int, Path(ge=1, le=1_000_000_000)],
    assistant: AssistantDep,
    access: AccessDep,
    space_id: SpaceQuery = "default",
) -> PlainTextResponse:
    """The text version `n` had: what an earlier answer quoted from it."""
    access.check_space(space_id)
    return PlainTextResponse(await assistant.version_text(space_id, doc_id, n))
