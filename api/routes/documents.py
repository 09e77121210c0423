"""Ingest, list, inspect and delete documents."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from docassist.api.deps import AccessDep, RuntimeDep
from docassist.api.schemas import (
    SPACE_PATTERN,
    DeleteResponse,
    DocumentInfo,
    DocumentList,
    ErrorResponse,
    IngestResponse,
)
from docassist.pipelines.documents.extract import file_kind
from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.errors import InvalidInput, NotFound, TooLarge
from docassist.pipelines.runtime import Runtime

router = APIRouter(tags=["documents"])
SpaceQuery = Annotated[str, Query(pattern=SPACE_PATTERN, description="1–64 of [A-Za-z0-9_-]")]
_READ_BLOCK = 1 << 20
_ERRORS = {code: {"model": ErrorResponse} for code in (404, 413, 415, 422, 503)}


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    """Read at most `limit` bytes; a larger upload is refused without reading it all."""
    parts, size = [], 0
    while block := await upload.read(_READ_BLOCK):
        size += len(block)
        if size > limit:
            raise TooLarge(f"the file is larger than MAX_UPLOAD_MB ({limit / (1024 * 1024):g} MB)", limit_bytes=limit)
        parts.append(block)
    return b"".join(parts)


def _info(runtime: Runtime, record: DocumentRecord) -> DocumentInfo:
    status, job = runtime.summary_status(record)
    return DocumentInfo(
        **record.public(),
        summary_status=status,
        summary_job_id=job.job_id if job else None,
        summary_progress=job.progress if job and status != "done" else None,
    )


@router.post("/ingest", response_model=IngestResponse, responses=_ERRORS)
async def ingest(
    request: Request,
    runtime: RuntimeDep,
    access: AccessDep,
    file: Annotated[UploadFile, File(description=".txt .md .pdf .docx .html; text in any common encoding")],
    space_id: Annotated[str, Form(pattern=SPACE_PATTERN)] = "default",
    generate_summary: Annotated[bool, Form()] = False,
) -> IngestResponse:
    """Extract, detect the language, chunk, embed and index one document. The same bytes in the
    same space come back as `duplicate: true` with nothing re-embedded. With `generate_summary`
    the answer comes at once with `summary_pending: true` and a `job_id` (see `GET /jobs/{id}`)."""
    if (await request.form()).get("space_id", None) == "":  # FastAPI reads an empty form field as absent
        raise InvalidInput("space_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -", space_id="")
    access.check_space(space_id)
    filename = file.filename or ""
    file_kind(filename)  # refuse unsupported types before reading the body
    data = await _read_limited(file, runtime.ingestor.max_upload_bytes)
    result = await asyncio.to_thread(runtime.ingestor.ingest, space_id, filename, data)
    r = result.record
    job = None
    if generate_summary and runtime.summary_status(r)[0] != "done":
        job = runtime.jobs.submit(r, r.language)
    return IngestResponse(
        doc_id=r.doc_id,
        space_id=r.space_id,
        filename=r.filename,
        language=r.language,
        chunks=r.chunks,
        tokens=r.tokens,
        duplicate=result.duplicate,
        summary_pending=job is not None and job.status in ("pending", "running"),
        job_id=job.job_id if job else None,
    )


@router.get("/documents", response_model=DocumentList)
async def list_documents(runtime: RuntimeDep, access: AccessDep, space_id: SpaceQuery = "default") -> DocumentList:
    """The space's documents, oldest first, with their summary status."""
    access.check_space(space_id)
    records = await asyncio.to_thread(runtime.registry.list, space_id)
    return DocumentList(space_id=space_id, documents=[_info(runtime, r) for r in records])


@router.get("/documents/{doc_id}", response_model=DocumentInfo, responses=_ERRORS)
async def get_document(
    doc_id: str, runtime: RuntimeDep, access: AccessDep, space_id: SpaceQuery = "default"
) -> DocumentInfo:
    """One document's metadata. A document of another space is `not_found`."""
    access.check_space(space_id)
    return _info(runtime, runtime.document(space_id, doc_id))


@router.delete("/documents/{doc_id}", response_model=DeleteResponse, responses=_ERRORS)
async def delete_document(
    doc_id: str, runtime: RuntimeDep, access: AccessDep, space_id: SpaceQuery = "default"
) -> DeleteResponse:
    """Remove the document's vectors, files and metadata."""
    access.check_space(space_id)
    if not await asyncio.to_thread(runtime.delete_document, space_id, doc_id):
        raise NotFound(f"no document {doc_id!r} in space {space_id!r}", doc_id=doc_id, space_id=space_id)
    return DeleteResponse(doc_id=doc_id, space_id=space_id, deleted=True)
