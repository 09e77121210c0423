"""A folder kept in sync: what `docassist sync` must send, in one request however large the folder."""

from __future__ import annotations

from fastapi import APIRouter, Request

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.schemas import error_responses
from docassist.api.sync_schemas import SyncDiffRequest, SyncDiffResponse

router = APIRouter(tags=["documents"])


@router.post("/sync/diff", response_model=SyncDiffResponse, responses=error_responses(401, 403, 408, 413, 422, 503))
async def sync_diff(
    body: SyncDiffRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> SyncDiffResponse:
    """Given a folder's files (path, SHA-256, size), what to send to make the space hold them: the
    paths to upload (no document of their name), the paths whose document holds other bytes
    (with its `doc_id`: a new version), the documents whose filename is no path of the folder
    (`delete`: listed only, the caller decides), the paths whose bytes a document of another
    name holds (`duplicate`) and how many are `unchanged`. A path maps to the document whose
    `filename` is that path, as an upload under that name keeps it. Changes nothing; it needs the
    role that uploads (editor). At most 100,000 files, paths of at most 1,024 characters, and a
    body of at most 32 MiB."""
    access.check_space(body.space_id, "editor")
    diff = await assistant.diff_folder(body.space_id, body.folder(), body.delete)
    detail = (
        f"{len(body.files)} files: {len(diff.upload)} to upload, {len(diff.update)} to update, "
        f"{len(diff.delete)} not in the folder" + (" (to delete)" if body.delete else "")
    )
    await record(request, access, "sync", space_id=body.space_id, detail=detail)
    return SyncDiffResponse.of(body.space_id, diff)
