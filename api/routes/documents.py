"""Ingest, list, inspect and delete documents."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.routes.jobs import upload_response
from docassist.api.schemas import (
    DeleteResponse,
    DocumentInfo,
    DocumentList,
    DocumentPatch,
    IngestResponse,
    JobProgressOut,
    UploadJobResponse,
    VersionOut,
    error_responses,
)
from docassist.pipelines.documents.catalog import KEEP, MAX_PAGE, DocumentQuery, Sort
from docassist.pipelines.documents.extract import SUPPORTED
from docassist.pipelines.documents.highlight import Highlight
from docassist.pipelines.errors import InvalidInput, TooLarge
from docassist.pipelines.identity.audit import Action
from docassist.pipelines.search.scope import MAX_TAG_CHARS
from docassist.pipelines.spaces import SPACE_PATTERN
from docassist.pipelines.views import Accepted, DocumentView, Ingested

router = APIRouter(tags=["documents"])
SpaceQuery = Annotated[str, Query(pattern=SPACE_PATTERN, description="1–64 of [A-Za-z0-9_-]")]
_READ_BLOCK = 1 << 20
_READ = error_responses(401, 403, 404, 409, 422, 503)
MAX_OFFSET = 1_000_000_000  # past any space; a larger number would overflow the database's integer


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """Read at most `limit` bytes; a larger upload is refused without reading it all."""
    parts, size = [], 0
    while block := await upload.read(_READ_BLOCK):
        size += len(block)
        if size > limit:
            raise TooLarge(f"the file is larger than MAX_UPLOAD_MB ({limit / (1024 * 1024):g} MB)", limit_bytes=limit)
        parts.append(block)
    return b"".join(parts)


def document_info(view: DocumentView) -> DocumentInfo:
    r, job = view.record, view.job
    return DocumentInfo(
        doc_id=r.doc_id,
        space_id=r.space_id,
        filename=r.filename,
        ext=r.ext,
        language=r.language,
        chunks=r.chunks,
        tokens=r.tokens,
        chars=r.chars,
        size_bytes=r.size_bytes,
        created_at=r.created_at,
        summary_status=view.summary_status,
        summary_job_id=job.job_id if job else None,
        summary_progress=JobProgressOut.model_validate(job.progress.model_dump())
        if job and view.summary_status != "done"
        else None,
        title=r.title,
        tags=list(view.tags),
        version=r.version,
    )


_INGEST = error_responses(401, 403, 408, 413, 415, 422, 429, 503)


@router.post(
    "/ingest",
    response_model=IngestResponse,
    responses={202: {"model": UploadJobResponse, "description": "still running: its job"}, **_INGEST},
)
async def ingest(
    request: Request,
    assistant: AssistantDep,
    access: AccessDep,
    file: Annotated[UploadFile, File(description=f"{' '.join(sorted(SUPPORTED))}; text in any common encoding")],
    space_id: Annotated[str, Form(pattern=SPACE_PATTERN)] = "default",
    generate_summary: Annotated[bool, Form()] = False,
    wait: Annotated[bool, Form(description="answer only when the upload has ended, however long it takes")] = False,
    replace: Annotated[bool, Form(description="a document of the space with this filename gets a new version")] = False,
    tags: Annotated[
        list[str] | None,
        Form(description="the document's tags, one per field (repeat it); set once the upload has ended"),
    ] = None,
) -> IngestResponse | JSONResponse:
    """Extract, detect the language, chunk, embed and index one document. An upload done within
    `INGEST_WAIT_S` (3 s) is answered 200 with the document; a longer one 202 with its job
    (`Location: /jobs/{job_id}`; stage and progress there and on `/jobs/{job_id}/events`), unless
    `wait=true`. The same bytes in the same space come back as `duplicate: true` with nothing
    re-embedded. With `generate_summary` a summary job follows (`job_id`, `summary_pending`).
    Uploads run `UPLOAD_WORKERS` at a time with `UPLOAD_QUEUE` waiting; past that, 429 with
    `Retry-After`. A client that leaves before its answer stops its upload. With `replace=true`,
    a document of the space with the same filename gets the file as its next version (as
    `PUT /documents/{id}`)."""
    if (await request.form()).get("space_id", None) == "":  # FastAPI reads an empty form field as absent
        raise InvalidInput("space_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -", space_id="")
    access.check_space(space_id, "editor")
    filename = file.filename or ""
    assistant.check_file(filename)  # refuse unsupported types before reading the body
    data = await read_limited(file, assistant.settings.max_upload_bytes)
    done = await assistant.ingest(space_id, filename, data, generate_summary, wait, replace, tags)
    doc_id = done.upload.doc_id if isinstance(done, Accepted) else done.document.record.doc_id
    versioned = isinstance(done, Ingested) and done.replaced is not None
    action: Action = "new_version" if versioned else "upload"
    await record(request, access, action, space_id=space_id, doc_id=doc_id, detail=filename[:200])
    return ingest_response(done)


def ingest_response(done: Ingested | Accepted) -> IngestResponse | JSONResponse:
    """An upload's answer: the document (200), or its job while it still runs (202)."""
    if isinstance(done, Accepted):
        body = upload_response(done.upload)
        return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": f"/jobs/{body.job_id}"})
    r, replaced = done.document.record, done.replaced
    return IngestResponse(
        doc_id=r.doc_id,
        space_id=r.space_id,
        filename=r.filename,
        language=r.language,
        chunks=r.chunks,
        tokens=r.tokens,
        duplicate=done.duplicate,
        summary_pending=done.job is not None and done.job.status in ("pending", "running"),
        job_id=done.job.job_id if done.job else None,
        version=r.version,
        reused_chunks=done.reused_chunks,
        replaced_kind=replaced.ext if replaced is not None and replaced.ext != r.ext else None,
    )


@router.get("/documents", response_model=DocumentList, responses=error_responses(401, 403, 422, 503))
async def list_documents(
    assistant: AssistantDep,
    access: AccessDep,
    space_id: SpaceQuery = "default",
    tag: Annotated[str | None, Query(max_length=MAX_TAG_CHARS, description="only documents with this tag")] = None,
    language: Annotated[str | None, Query(max_length=16, description='only documents in this language ("ru")')] = None,
    q: Annotated[str | None, Query(max_length=300, description="in the title or the filename, any case")] = None,
    sort: Sort = "created_at",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="documents to skip (at most 1,000,000,000)")] = 0,
) -> DocumentList:
    """A page of the space's documents with their title, tags and summary status: oldest first
    unless `sort` and `order` say otherwise; `tag`, `language` and `q` filter (all that are given
    hold); `total` counts every document the filters keep."""
    access.check_space(space_id)
    query = DocumentQuery(tag, language, q, sort, order == "desc", limit, offset)
    page = await assistant.documents(space_id, query)
    documents = [document_info(v) for v in page.documents]
    return DocumentList(space_id=space_id, documents=documents, total=page.total, limit=limit, offset=offset)


@router.patch("/documents/{doc_id}", response_model=DocumentInfo, responses=_READ)
async def describe_document(
    doc_id: str,
    body: DocumentPatch,
    request: Request,
    assistant: AssistantDep,
    access: AccessDep,
    space_id: SpaceQuery = "default",
) -> DocumentInfo:
    """Set a document's tags (replacing the old ones; `[]` clears them) and its title (`null`
    clears it); a field left out stays as it is. Tags take effect at once for a scope's `tags`. A
    tag is 1-64 characters without control characters; at most 100 per document."""
    access.check_space(space_id, "editor")
    if not body.model_fields_set:
        raise InvalidInput("give tags, title or both")
    title = body.title if "title" in body.model_fields_set else KEEP
    view = await assistant.describe_document(space_id, doc_id, body.tags, title)
    detail = ", ".join(view.tags)[:200] if body.tags is not None else f"title {body.title!r}"[:200]
    await record(request, access, "tag", space_id=space_id, doc_id=doc_id[:64], detail=detail)
    return document_info(view)


@router.get("/documents/{doc_id}", response_model=DocumentInfo, responses=_READ)
async def get_document(
    doc_id: str, assistant: AssistantDep, access: AccessDep, space_id: SpaceQuery = "default"
) -> DocumentInfo:
    """One document's metadata, with its versions. A document of another space is `not_found`."""
    access.check_space(space_id)
    info = document_info(await assistant.document(space_id, doc_id))
    versions = await assistant.versions(space_id, doc_id)
    info.versions = [VersionOut.model_validate(v, from_attributes=True) for v in versions]
    return info


@router.get(
    "/documents/{doc_id}/text",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **_READ},
)
async def get_document_text(
    doc_id: str, assistant: AssistantDep, access: AccessDep, space_id: SpaceQuery = "default"
) -> PlainTextResponse:
    """The text extracted from the document (UTF-8): what its summaries and answers are made of."""
    access.check_space(space_id)
    return PlainTextResponse(await assistant.document_text(space_id, doc_id))


@router.get(
    "/documents/{doc_id}/pages/{page}",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the page as a PNG"},
        **error_responses(401, 403, 404, 409, 413, 415, 422, 429, 503),
    },
)
async def get_document_page(
    doc_id: str,
    assistant: AssistantDep,
    access: AccessDep,
    page: Annotated[int, Path(ge=1, le=1_000_000, description="1-based, as a source's `location.page`")],
    space_id: SpaceQuery = "default",
    highlight: Annotated[
        str | None,
        Query(
            max_length=19,
            description="START-END: a citation's `start` and `end` (offsets in the document's text); the quote is "
            "marked on the page, its letters found in the page's text layer or, for a scan, among the words OCR "
            "read there. `Highlight-Lines` says how many lines were marked (0: not on this page)",
            examples=["1200-1342"],
        ),
    ] = None,
) -> Response:
    """One page of a PDF document as a PNG at 110 dpi, rendered by the service from the uploaded
    file: the page a citation names. A page the document does not have is `not_found`; a
    document that is not a PDF, `unsupported_media_type`; a page whose images declare more than
    `MAX_IMAGE_PIXELS` or that takes longer than `PAGE_RENDER_TIMEOUT_S` to draw, 422
    `page_too_costly`. A key has at most `RENDERS_PER_KEY` renders in flight (429 past it), and
    a few renders wait for the render worker (429 `render_queue_full` past them)."""
    access.check_space(space_id)
    marks = Highlight.parse(highlight) if highlight is not None else None
    with assistant.admit("page", access.holder):
        rendered = await assistant.document_page(space_id, doc_id, page, marks)
    # a new version (PUT) changes a document's pages under the same id: asked again each time;
    # `private`: the answer needed a key
    headers = {"Cache-Control": "private, no-cache"}
    if rendered.marked_lines is not None:
        headers["Highlight-Lines"] = str(rendered.marked_lines)
    return Response(rendered.png, media_type="image/png", headers=headers)


@router.delete("/documents/{doc_id}", response_model=DeleteResponse, responses=_READ)
async def delete_document(
    doc_id: str, request: Request, assistant: AssistantDep, access: AccessDep, space_id: SpaceQuery = "default"
) -> DeleteResponse:
    """Stop the document's upload (if it is still being ingested: its job ends `cancelled`, nothing
    is stored) and its summary runs, and remove its vectors, files, summaries and jobs."""
    access.check_space(space_id, "editor")
    await assistant.delete(space_id, doc_id)
    await record(request, access, "delete", space_id=space_id, doc_id=doc_id[:64])
    return DeleteResponse(doc_id=doc_id, space_id=space_id, deleted=True)
