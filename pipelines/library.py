"""The library: the documents of a space as callers see them — uploads, the list with each
document's summary status, a document's text and pages, and deleting one.

The documents feature. It answers with `views.py`'s views, which join a document to its summary,
and a deletion stops the document's summary runs and jobs: so it sits above both the documents
and the summaries packages, and is built from their started parts.

Spaces arrive validated and already checked against the caller's key; a document outside the
space asked for is `NotFound`, never a hint that it exists elsewhere. Database reads run on the
storage lane and uploads on their own lane, so uploads never take the threads reads need; a page
is drawn by a render worker, waiting on the pages lane.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from docassist.pipelines.documents.catalog import KEEP, MAX_TITLE_CHARS, Catalog, DocumentQuery, Titled
from docassist.pipelines.documents.extract import file_kind
from docassist.pipelines.documents.folder_diff import FolderDiff, FolderFile, diff_space
from docassist.pipelines.documents.highlight import Highlight
from docassist.pipelines.documents.ingestion import Ingestor
from docassist.pipelines.documents.names import stored_name
from docassist.pipelines.documents.pages import PAGE_DPI, RenderedPage, stored_pdf
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.documents.sandbox import ExtractionSandbox
from docassist.pipelines.documents.uploads import Submitted, UploadRunner
from docassist.pipelines.documents.versions import Version, Versions, bytes_sha256
from docassist.pipelines.errors import InvalidInput, NotFound, NotReady, shown
from docassist.pipelines.lanes import Lanes
from docassist.pipelines.search.scope import TAGS_KEY, Scope, clean_tags, tag_payload
from docassist.pipelines.spaces import check_space_id
from docassist.pipelines.summaries.jobs.runner import JobRunner
from docassist.pipelines.summaries.runs.service import SummaryService
from docassist.pipelines.views import Accepted, DocumentPage, DocumentView, Ingested, document_views

T = TypeVar("T")


class Library:
    def __init__(
        self, registry: Registry, uploads: UploadRunner, ingestor: Ingestor, sandbox: ExtractionSandbox,
        summaries: SummaryService, jobs: JobRunner, lanes: Lanes, database_url: str, wait_s: float,
    ) -> None:  # fmt: skip
        """`summaries` and `jobs`: a document's summary status, its summary job after an upload, and
        what deleting it stops; `wait_s`: how long an upload's caller waits (`INGEST_WAIT_S`)."""
        self.registry, self.uploads, self.ingestor, self.sandbox = registry, uploads, ingestor, sandbox
        self.summaries, self.jobs, self.lanes = summaries, jobs, lanes
        self.database_url, self.wait_s = database_url, wait_s
        self.catalog = Catalog(registry.db)

    async def _read(self, fn: Callable[[], T]) -> T:
        """A storage read, on the storage lane: uploads cannot take its threads."""
        return await self.lanes.storage.run(fn)

    def _views(self, records: list[DocumentRecord]) -> list[DocumentView]:
        store = self.summaries.store
        return document_views(records, self.summaries.cache_key, store, self.jobs.store, self.catalog.tags_of)

    def _view(self, record: DocumentRecord) -> DocumentView:
        return self._views([record])[0]

    def record(self, space_id: str, doc_id: str) -> DocumentRecord:
        """The document's row (a database read); `NotReady` while its upload still runs, `NotFound`
        outside `space_id`."""
        check_space_id(space_id)
        record = self.registry.get(space_id, doc_id)
        if record is None:
            self.check_ready(space_id, [doc_id])
            raise NotFound.document(space_id, doc_id)
        return record

    def check_ready(self, space_id: str, doc_ids: Sequence[str]) -> None:
        """`NotReady`, with the upload's job, for the first of `doc_ids` still being read."""
        job = self.uploads.store.active(space_id, doc_ids) if doc_ids else None
        if job is not None:
            wait = max(1, min(60, math.ceil(job.progress.eta_s or 2)))
            raise NotReady(
                f"document {shown(job.doc_id)} is still being read ({job.progress.stage}); "
                f"its upload is job {job.job_id}",
                job_id=job.job_id,
                retry_after_s=wait,
                doc_id=job.doc_id,
                stage=job.progress.stage,
            )

    async def check_scope(self, space_id: str, scope: Scope | None) -> None:
        """A scope naming a document still being read is `NotReady`, not an empty answer."""
        if scope and scope.doc_ids:
            await self._read(lambda: self.check_ready(space_id, scope.doc_ids))

    async def find(self, space_id: str, doc_id: str) -> DocumentRecord:
        """`record`, on the storage lane."""
        return await self._read(lambda: self.record(space_id, doc_id))

    async def get(self, space_id: str, doc_id: str) -> DocumentView:
        return await self._read(lambda: self._view(self.record(space_id, doc_id)))

    async def text(self, space_id: str, doc_id: str) -> str:
        """The text extracted from the document: what summaries and answers read."""
        return await self._read(lambda: self.registry.text_of(self.record(space_id, doc_id)))

    async def page(self, space_id: str, doc_id: str, number: int, highlight: Highlight | None = None) -> RenderedPage:
        """Page `number` (1-based) of a PDF document as a PNG at `PAGE_DPI`, for a reader to see
        the page a citation names, the `highlight`ed quote marked on it. Drawn by a render worker,
        which reads the stored original itself: the file is a user's upload, never held in the
        service's memory, and its page waits on the pages lane (`RenderQueueFull` past its
        places), never on an upload."""
        record = await self.find(space_id, doc_id)
        source = stored_pdf(record, self.database_url)
        return await self.lanes.pages.run(self.sandbox.render_page, source, number, PAGE_DPI, highlight)

    async def list(self, space_id: str, query: DocumentQuery | None = None) -> DocumentPage:
        """A page of the space's documents the query keeps (oldest first without one)."""
        check_space_id(space_id)

        def read() -> DocumentPage:
            found = self.catalog.find(space_id, query or DocumentQuery())
            return DocumentPage(self._views(found.records), found.total)

        return await self._read(read)

    async def describe(self, space_id: str, doc_id: str, tags: list[str] | None, title: Titled) -> DocumentView:
        """New tags (replacing the old; on the chunks too, so a scope by tag finds them at once)
        and a new title (`KEEP`: unchanged, None: cleared)."""
        kept = clean_tags(tags) if tags is not None else None
        if title is not KEEP and title is not None and not 1 <= len(title.strip()) <= MAX_TITLE_CHARS:
            raise InvalidInput(f"title: 1-{MAX_TITLE_CHARS:,} characters, or null to clear it")
        record = await self.find(space_id, doc_id)
        if kept is not None:  # the chunks first: a failure there leaves the row as it was
            payload = {TAGS_KEY: tag_payload(kept)}
            await self.lanes.storage.run(self.ingestor.store.set_payload, payload, space_id, doc_id)
        named = title.strip() if isinstance(title, str) else None

        def write() -> DocumentView:
            if not self.catalog.describe(space_id, doc_id, record.filename, kept, named, title is not KEEP):
                raise NotFound.document(space_id, doc_id)
            return self._view(self.record(space_id, doc_id))

        return await self._read(write)

    async def spaces(self, reach: frozenset[str] | None) -> list[str]:
        """The spaces a caller can ask over: a limited key's own spaces; for a key for every space
        (`None`), every space that holds a document."""
        if reach is not None:
            return sorted(reach)
        return await self._read(self.registry.spaces)

    @staticmethod
    def check_file(filename: str) -> None:
        """What a file's name tells before its bytes are read: a kind docassist reads, or 415."""
        file_kind(filename)

    async def ingest(
        self,
        space_id: str,
        filename: str,
        data: bytes,
        generate_summary: bool = False,
        wait: bool = False,
        replace: bool = False,
        tags: list[str] | None = None,
    ) -> Ingested | Accepted:
        """Every upload runs as a job (`UploadQueueFull` when the uploads lane's queue is full); the
        caller waits `INGEST_WAIT_S` for it (`wait`: until it ends) and gets the document, or the
        job of an upload that runs on. A caller cancelled while it waits — its client left —
        stops the upload, storing nothing. A failure within the wait is raised as it is. `replace`:
        a document of the space with this filename gets these bytes as its next version. `tags`
        (checked before anything runs) replace the document's: set by the upload's job before it
        is done, or at once on a document these bytes already are."""
        kept = clean_tags(tags) if tags is not None else None
        if replace:
            named = await self._read(lambda: self.registry.named(space_id, stored_name(filename)))
            if named is not None:
                return await self.replace(space_id, named.doc_id, filename, data, generate_summary, wait, kept)
        submitted = await self.uploads.submit(space_id, filename, data, generate_summary, tags=kept)
        return await self._tagged(await self._finish(submitted, generate_summary, wait), kept)

    async def replace(
        self, space_id: str, doc_id: str, filename: str, data: bytes, generate_summary: bool = False,
        wait: bool = False, tags: list[str] | None = None,
    ) -> Ingested | Accepted:  # fmt: skip
        """Version n+1 of the document, uploaded as any document is (a job, the same wait); the same
        bytes as its current version change nothing (`duplicate`). Its summary is made again where
        the replaced version had one or had one coming. `tags`: as for `ingest`."""
        kept = clean_tags(tags) if tags is not None else None
        view = await self.get(space_id, doc_id)
        same = await self._read(lambda: self._current_sha256(view.record)) == bytes_sha256(data)
        if same:
            return await self._tagged(await self._known(view.record, generate_summary), kept)
        again = generate_summary or view.summary_status != "none"
        submitted = await self.uploads.submit(space_id, filename, data, again, replaces=doc_id, tags=kept)
        return await self._tagged(await self._finish(submitted, again, wait), kept)

    async def _tagged(self, done: Ingested | Accepted, tags: tuple[str, ...] | None) -> Ingested | Accepted:
        """A duplicate upload's document with `tags` (None: its tags as they were); an upload's job
        set them itself."""
        if tags is None or not isinstance(done, Ingested) or not done.duplicate:
            return done
        record = done.document.record
        view = await self.describe(record.space_id, record.doc_id, list(tags), KEEP)
        return dataclasses.replace(done, document=view)

    async def diff_folder(self, space_id: str, files: Sequence[FolderFile], delete: bool) -> FolderDiff:
        """What a folder kept in sync sends for `files` (`folder_diff.py`): one read of the space."""
        check_space_id(space_id)
        original = functools.partial(self.registry.original, space_id)
        return await self._read(lambda: diff_space(self.registry.db, space_id, files, delete, original))

    def _current_sha256(self, record: DocumentRecord) -> str:
        return record.sha256 or bytes_sha256(self.registry.original(record.space_id, record.doc_id) or b"")

    async def versions(self, space_id: str, doc_id: str) -> list[Version]:
        return await self._read(lambda: Versions(self.registry.db).of(self.record(space_id, doc_id)))

    async def version_text(self, space_id: str, doc_id: str, n: int) -> str:
        """Version `n`'s text: the current one's as `text`, a replaced one's as it was."""

        def read() -> str:
            record = self.record(space_id, doc_id)
            text = self.registry.text_of(record) if n == record.version else Versions(self.registry.db).text(record, n)
            if text is None:
                raise NotFound(f"document {shown(doc_id)} has no version {n} (it is at {record.version})", version=n)
            return text

        return await self._read(read)

    async def _finish(self, submitted: Submitted, generate_summary: bool, wait: bool) -> Ingested | Accepted:
        """An upload submitted: its document once it is done within the wait, else its job."""
        uploads = self.uploads
        if submitted.duplicate is not None:
            return await self._known(submitted.duplicate.record, generate_summary)
        running = submitted.running
        assert running is not None
        result = await uploads.wait(running, None if wait else self.wait_s)
        if result is None:
            upload = await uploads.job(running.job.job_id)
            return Accepted(upload or running.job)

        def done() -> Ingested:
            upload = uploads.store.get(running.job.job_id)
            summary = self.jobs.store.get(upload.summary_job_id) if upload and upload.summary_job_id else None
            view = self._view(result.record)
            return Ingested(view, result.duplicate or submitted.joined, summary, result.replaced, result.reused_chunks)

        return await self._read(done)

    async def _known(self, record: DocumentRecord, generate_summary: bool) -> Ingested:
        """A duplicate upload: the stored document, with the summary job an upload that asked for
        one gets by the same rule as a new document's (`JobRunner.summary_job_for`)."""
        job = await self._read(lambda: self.jobs.summary_job_for(record)) if generate_summary else None
        view = (
            DocumentView(record, job.status, job) if job is not None else await self._read(lambda: self._view(record))
        )
        return Ingested(view, True, job)

    async def delete(self, space_id: str, doc_id: str) -> None:
        """Stop the document's upload if it is still being ingested and its summary runs, then
        remove it everywhere: its vectors, files, row, the summaries and partial results of its
        space, and its jobs. Nothing about it is written afterwards."""
        stopped = await self.uploads.cancel(space_id, doc_id)
        try:
            record = await self.find(space_id, doc_id)
        except NotFound:
            if stopped:
                return  # deleted before it was stored: nothing left to remove
            raise
        await self._read(lambda: self.jobs.store.forget_document(space_id, doc_id))
        await self.summaries.cancel_document(space_id, doc_id)
        if not await self._read(lambda: self.ingestor.delete(space_id, doc_id)):
            raise NotFound.document(space_id, doc_id)

        def forget() -> None:
            last = record.text_sha256 is None or self.registry.twins(space_id, record.text_sha256) == 0
            self.summaries.store.forget_document(space_id, doc_id, record.text_sha256, last)

        await self._read(forget)
