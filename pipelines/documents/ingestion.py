"""Ingestion: bytes in, a searchable document out, or nothing at all.

extract → detect language → chunk → embed (dense + BM25) → Qdrant, with the original file and
its extracted text kept in the database (any backend can summarize it; an index can be
rebuilt from it). `doc_id` derives from the space and the bytes, so the same upload is
recognised before anything is embedded. A failure at any step removes what the attempt wrote.
An upload whose client left or whose document was deleted (`abandoned`) stops between steps
and between embedding batches; `progress` hears of each stage and of every batch embedded.
A document is refused before it is embedded when it has more chunks than MAX_DOCUMENT_CHUNKS:
what an upload costs is its embedding time, which grows with its chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.utils import get_tokenizer

from docassist.pipelines import metrics
from docassist.pipelines.documents.embed_ahead import EmbedAhead
from docassist.pipelines.documents.extract import OcrProgress, extract_document, file_kind
from docassist.pipelines.documents.locations import Extracted, Locator, Section, split_units
from docassist.pipelines.documents.names import stored_name
from docassist.pipelines.documents.registry import Contents, DocumentRecord, Registry, text_sha256
from docassist.pipelines.documents.upload_store import UploadStage
from docassist.pipelines.documents.versions import reuse_vectors, write_version
from docassist.pipelines.errors import Cancelled, NotFound, TooLarge, TooManyChunks
from docassist.pipelines.language import detect_language
from docassist.pipelines.logs import event
from docassist.pipelines.search.remote_embeddings import RemoteEmbedding
from docassist.pipelines.search.scope import TAGS_KEY, UPLOADED_KEY, VERSION_KEY, uploaded_payload
from docassist.pipelines.search.store import Store
from docassist.pipelines.spaces import check_space_id

CHUNK_TOKENS = 300
CHUNK_OVERLAP = 40
_POINT_NS = uuid.UUID("6f1c3e52-5d0b-4a53-9e4e-3f2a7c9b1d10")
_HIDDEN_KEYS = ["space_id", "filename", "language", "chunk", "location", "places", TAGS_KEY, UPLOADED_KEY, VERSION_KEY]
EMBED_BATCH = 8  # an abandoned upload stops within one batch (a few seconds on 2 cores)
# A document of at most this many chunks (a note, a page) is embedded beside the searches, not
# queued in the embedder process behind another upload's batch: it costs what a citation step does.
SMALL_DOCUMENT_CHUNKS = 4


Progress = Callable[[UploadStage, int, int], None]
# the extractor: a file's name and bytes, and a callback for pages OCR'd (`OcrProgress`)
Extract = Callable[..., Extracted]  # (filename, bytes, progress=(OcrProgress) → None)


def _never() -> bool:
    return False


def _unheard(_stage: UploadStage, _done: int, _total: int) -> None:
    return None


def _stop_if(abandoned: Callable[[], bool]) -> None:
    if abandoned():
        event("[INGEST] Stopped", "its client left or its document was deleted: nothing stored", level=logging.WARNING)
        raise Cancelled("the upload was stopped (its client left, or its document was deleted); nothing was stored")


def make_doc_id(space_id: str, data: bytes) -> str:
    return hashlib.sha256(space_id.encode() + b"\0" + data).hexdigest()[:32]


def warm_up_splitter() -> None:
    """Load what llama-index's SentenceSplitter loads on its first real split (nltk's sentence
    tokenizer, about 1.6–1.9 s), so the first ingest or tree summary does not pay for it."""
    sample = "This sentence warms the splitter up. " * (CHUNK_TOKENS // 2)
    SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP).split_text(sample)


def count_tokens(text: str) -> int:
    """cl100k token count (llama-index's bundled tokenizer, offline); a model-neutral size."""
    return len(get_tokenizer()(text))


def _log_indexed(
    record: DocumentRecord, marks: tuple[float, float, float, float, float], embedded_by: str, reused: int = 0
) -> None:
    """`[INGEST] Indexed`, with where the upload's seconds went (`marks`: start, extracted,
    chunked, embedded, written), what embedded it (`small`: beside the searches) and, for a new
    version, how many chunks kept the replaced version's vectors."""
    t0, t_extract, t_chunk, t_embed, t_end = marks
    metrics.ingested(record.chunks, t_embed - t_chunk)
    event(
        "[INGEST] Indexed",
        f"doc_id={record.doc_id} space={record.space_id} file={record.filename!r} language={record.language}",
        f"{record.chars:,} chars, {record.tokens:,} tokens, {record.chunks} chunks"
        + (f" · version {record.version}: {reused} chunks unchanged, not embedded again" if record.version > 1 else ""),
        f"extract {t_extract - t0:.2f}s · chunk {t_chunk - t_extract:.2f}s · "
        f"embed {t_embed - t_chunk:.2f}s ({record.chunks / max(t_embed - t_chunk, 1e-6):.0f} chunks/s, "
        f"{embedded_by}) · "
        f"write {t_end - t_embed:.2f}s · total {t_end - t0:.2f}s",
        doc_id=record.doc_id,
        chunks=record.chunks,
        tokens=record.tokens,
        embedded_by=embedded_by,
        version=record.version,
        reused_chunks=reused,
        timing={
            "extract_s": t_extract - t0,
            "chunk_s": t_chunk - t_extract,
            "embed_s": t_embed - t_chunk,
            "write_s": t_end - t_embed,
        },
    )


@dataclass
class IngestResult:
    record: DocumentRecord
    duplicate: bool
    replaced: DocumentRecord | None = None  # the version this upload replaced
    reused_chunks: int = 0  # chunks whose text the replaced version had: not embedded again


@dataclass(frozen=True)
class Admitted:
    """An upload that passed `Ingestor.admit`: its document's id and its file's kind (`.pdf`, …)."""

    doc_id: str
    kind: str
    replaces: bool = False  # a new version of the document `doc_id` (PUT /documents/{id})


class Ingestor:
    """Owns the write path into the registry, the store and DATA_DIR/files."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        embed_model: BaseEmbedding,
        max_upload_bytes: int,
        extract: Extract = extract_document,
        max_chunks: int = 4000,
        embed_small: Callable[[list[str]], list[list[float]]] | None = None,
    ) -> None:
        """`embed_model` embeds uploads' passages (the embedder process, in the service);
        `embed_small`, when given, a document of at most `SMALL_DOCUMENT_CHUNKS` chunks."""
        self.store, self.registry, self.embed_model = store, registry, embed_model
        self.embed_small = embed_small
        # an embedding server's round of concurrent requests at a time: a GPU idles between small ones
        remote = isinstance(embed_model, RemoteEmbedding)
        self.embed_batch = max(EMBED_BATCH, embed_model.embed_batch_size) if remote else EMBED_BATCH
        self.max_upload_bytes, self.max_chunks = max_upload_bytes, max_chunks
        self.extract = extract
        self.splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def admit(self, space_id: str, filename: str, data: bytes, replaces: str | None = None) -> Admitted:
        """What can be refused before any work (the space, the file's kind and size), decided once:
        the document's id (`replaces`' for a new version of it) and the file's kind, for `ingest`."""
        check_space_id(space_id)
        kind = file_kind(filename)
        if len(data) > self.max_upload_bytes:
            raise TooLarge(f"the file is larger than {self.max_upload_bytes // (1024 * 1024)} MB", size_bytes=len(data))
        return Admitted(replaces or make_doc_id(space_id, data), kind, replaces is not None)

    def ingest(
        self,
        space_id: str,
        filename: str,
        data: bytes,
        abandoned: Callable[[], bool] = _never,
        progress: Progress = _unheard,
        admitted: Admitted | None = None,
    ) -> IngestResult:
        """The document stored, or the one already stored from the same bytes. `admitted`: what
        `admit` returned for these bytes, when the caller already admitted them."""
        admitted = admitted or self.admit(space_id, filename, data)
        doc_id, ext = admitted.doc_id, admitted.kind
        with self._locks[doc_id]:
            existing = self.registry.get(space_id, doc_id)
            if admitted.replaces:
                if existing is None:  # deleted since the version was asked for
                    raise NotFound.document(space_id, doc_id)
                return self._ingest_new(space_id, doc_id, filename, ext, data, abandoned, progress, existing)
            if existing is not None:
                event(
                    "[INGEST] Duplicate",
                    f"doc_id={doc_id} space={space_id}: already indexed, nothing re-embedded",
                    doc_id=doc_id,
                    space_id=space_id,
                    duplicate=True,
                )
                return IngestResult(existing, duplicate=True)
            return self._ingest_new(space_id, doc_id, filename, ext, data, abandoned, progress)

    def _ingest_new(
        self,
        space_id: str,
        doc_id: str,
        filename: str,
        ext: str,
        data: bytes,
        abandoned: Callable[[], bool],
        progress: Progress,
        previous: DocumentRecord | None = None,
    ) -> IngestResult:
        """A new document, or the next version of `previous`: its chunks whose text `previous` had
        keep their vectors, the rest are embedded."""
        t0 = time.perf_counter()
        _stop_if(abandoned)
        progress("reading", 0, 0)
        ahead = EmbedAhead(self.splitter.split_text, self._embed_texts, EMBED_BATCH)
        extracted = self._extract(filename, data, abandoned, progress, ahead)
        text = extracted.text
        t_extract = time.perf_counter()
        language = detect_language(text)
        event(
            f"[Language Detection] Input text language: {language.code} ({language.native_name})",
            f"confidence {language.confidence}",
            language=language.code,
            confidence=language.confidence,
        )
        progress("chunking", 0, 0)
        version = previous.version + 1 if previous else 1
        nodes = self._chunk(text, space_id, doc_id, filename, language.code, extracted.sections, version)
        self._check_size(nodes)
        t_chunk = time.perf_counter()
        record = DocumentRecord(
            doc_id=doc_id,
            space_id=space_id,
            filename=stored_name(filename),
            ext=ext,
            language=language.code,
            chunks=len(nodes),
            tokens=count_tokens(text),
            chars=len(text),
            size_bytes=len(data),
            created_at=previous.created_at if previous else 0.0,
            text_sha256=text_sha256(text),
            title=previous.title if previous else None,
            version=version,
            sha256=hashlib.sha256(data).hexdigest(),
            version_at=time.time() if previous else None,
        )
        reused = reuse_vectors(self.store, nodes, previous) if previous else 0
        embedded_by = self._embed(nodes, abandoned, progress, ahead)
        t_embed = time.perf_counter()
        contents = Contents(text, data, extracted.page_words)
        if previous:
            write_version(self.store, self.registry.db, (previous, record), nodes, contents)
        else:
            self._write(record, nodes, contents)
        _log_indexed(record, (t0, t_extract, t_chunk, t_embed, time.perf_counter()), embedded_by, reused)
        return IngestResult(record, duplicate=False, replaced=previous, reused_chunks=reused)

    def _check_size(self, nodes: list[TextNode]) -> None:
        if len(nodes) > self.max_chunks:
            raise TooManyChunks(
                f"the document makes {len(nodes):,} chunks of {CHUNK_TOKENS} tokens; MAX_DOCUMENT_CHUNKS allows "
                f"{self.max_chunks:,} (embedding is what an upload costs) — split it into smaller documents",
                chunks=len(nodes),
                limit=self.max_chunks,
            )

    def _embed_texts(self, texts: list[str]) -> list[list[float]]:
        return self.embed_model.get_text_embedding_batch(texts)

    def _extract(
        self, filename: str, data: bytes, abandoned: Callable[[], bool], progress: Progress, ahead: EmbedAhead
    ) -> Extracted:
        """The document's text; a scan's pages reported as they are OCR'd, and embedded ahead."""

        def scanned(step: OcrProgress) -> None:  # pages OCR'd: progress, a chance to stop, embedding ahead
            progress("ocr", step.done, step.total)
            _stop_if(abandoned)
            ahead.feed(step.text_so_far)

        with ahead:
            extracted = self.extract(filename, data, progress=scanned)
        _stop_if(abandoned)
        return extracted

    def _write(self, record: DocumentRecord, nodes: list[TextNode], contents: Contents) -> None:
        """Vectors, then the row, text and original, all or nothing."""
        self.registry.begin(record)
        for node in nodes:  # what a scope filters on besides the language (`search/scope.py`)
            node.metadata.update({UPLOADED_KEY: uploaded_payload(record.created_at), TAGS_KEY: [], VERSION_KEY: 1})
        try:
            self.store.add(nodes)
            self.registry.commit(record.space_id, record.doc_id, contents)
        except BaseException:
            with contextlib.suppress(Exception):  # what cannot be undone now stays `writing`: recover() retries
                self.discard(record.space_id, record.doc_id)
            raise

    def _embed(
        self, nodes: list[TextNode], abandoned: Callable[[], bool], progress: Progress, ahead: EmbedAhead
    ) -> str:
        """Dense vectors for every chunk not embedded ahead, a batch at a time: progress and a
        chance to stop after each. Which model embedded them: `small` or `uploads`."""
        for node in nodes:
            if node.embedding is None:  # a chunk the replaced version had keeps its vector
                node.embedding = ahead.vector(node.text)
        todo = [node for node in nodes if node.embedding is None]
        done = len(nodes) - len(todo)
        if len(ahead):
            event(
                "[INGEST] Embedded ahead",
                f"{done} of {len(nodes)} chunks embedded while the document was being read",
                ahead=done,
                chunks=len(nodes),
            )
        small = self.embed_small is not None and len(nodes) <= SMALL_DOCUMENT_CHUNKS
        embed = self.embed_small if small and self.embed_small is not None else self._embed_texts
        for start in range(0, len(todo), self.embed_batch):
            progress("embedding", done + start, len(nodes))
            _stop_if(abandoned)
            batch = todo[start : start + self.embed_batch]
            vectors = embed([n.text for n in batch])
            for node, vector in zip(batch, vectors, strict=True):
                node.embedding = vector
        progress("writing", len(nodes), len(nodes))
        _stop_if(abandoned)
        return "small" if embed is self.embed_small else "uploads"

    def _chunk(
        self,
        text: str,
        space_id: str,
        doc_id: str,
        filename: str,
        language: str,
        sections: Sequence[Section] = (),
        version: int = 1,
    ) -> list[TextNode]:
        nodes: list[TextNode] = []
        locator = Locator(text, sections)
        pieces = (piece for unit in split_units(text, sections) for piece in self.splitter.split_text(unit))
        for i, piece in enumerate(pieces):
            location, places = locator.place(piece)
            point = f"{doc_id}:{i}" if version == 1 else f"{doc_id}:v{version}:{i}"  # versions side by side
            node = TextNode(
                id_=str(uuid.uuid5(_POINT_NS, point)),
                text=piece,
                metadata={
                    "space_id": space_id,
                    "filename": stored_name(filename),
                    "language": language,
                    "chunk": i,
                    **({"location": location.as_dict()} if location is not None else {}),
                    **({"places": [[at, loc.as_dict()] for at, loc in places]} if places else {}),
                },
                excluded_embed_metadata_keys=_HIDDEN_KEYS,
                excluded_llm_metadata_keys=_HIDDEN_KEYS,
            )
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc_id)
            nodes.append(node)
        return nodes

    def discard(self, space_id: str, doc_id: str) -> None:
        """Remove every trace of a document: vectors, then the row and content, so a failure
        part-way leaves a row that says what is still to be removed."""
        self.store.delete_document(space_id, doc_id)
        self.registry.delete(space_id, doc_id)

    def delete(self, space_id: str, doc_id: str) -> bool:
        with self._locks[doc_id]:
            if self.registry.get(space_id, doc_id) is None:
                return False
            self.discard(space_id, doc_id)
            event("[DELETE] Document removed", f"doc_id={doc_id} space={space_id}", doc_id=doc_id)
            return True

    def recover(self) -> int:
        """Undo ingests a crash interrupted; returns how many were rolled back."""
        done = 0
        for record in self.registry.unfinished():
            try:
                self.discard(record.space_id, record.doc_id)
            except Exception as exc:
                event("[INGEST] Roll-back postponed", f"doc_id={record.doc_id}: {exc}", level=logging.WARNING)
                continue
            done += 1
            event("[INGEST] Rolled back unfinished ingest", f"doc_id={record.doc_id} space={record.space_id}")
        return done
