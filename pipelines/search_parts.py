"""The serving role's own parts: what reads documents in and searches them.

The extraction sandbox, the service's embedding model (queries and citations) and the embedder
process (uploads' passages; with an embedding server, `EMBEDDING_KIND=openai`, the server embeds
them and no process is needed), the vector store, the ingestor with its upload jobs, the retriever
and the citer. The runtime builds this holder with everything else, without touching the disk;
`start` loads the model and opens the store, whose collection is named by the model and its
dimension — and refuses to serve documents another model embedded (`search/collections.py`). The
`worker` role has none of it (`Runtime.search` is None).

Whatever `start` opened, `close` closes, in the reverse order — after a start that failed half
way too. Blocking start-up and shut-down steps run on the lifecycle lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from docassist.pipelines.answers.citations import Citer
from docassist.pipelines.documents.catalog import stamp_older_chunks
from docassist.pipelines.documents.ingestion import Ingestor, warm_up_splitter
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.documents.sandbox import ExtractionSandbox
from docassist.pipelines.documents.upload_store import UploadStore
from docassist.pipelines.documents.uploads import UploadRunner
from docassist.pipelines.errors import EmbedderUnavailable
from docassist.pipelines.lanes import Lanes
from docassist.pipelines.logs import event
from docassist.pipelines.search.collections import check_embedded
from docassist.pipelines.search.embedder_process import ProcessEmbedding
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim, embedding_health, model_tag
from docassist.pipelines.search.remote_embeddings import EmbeddingHealth, RemoteEmbedding
from docassist.pipelines.search.retrieval import Retriever
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import Settings


@dataclass(frozen=True)
class Loaded:
    """The parts that exist once the embedding model is loaded and the store is open."""

    sandbox: ExtractionSandbox
    embed_model: BaseEmbedding
    store: Store
    ingestor: Ingestor
    uploads: UploadRunner
    retriever: Retriever
    citer: Citer


class SearchParts:
    def __init__(
        self, settings: Settings, limits: ExtractLimits, registry: Registry, uploads: UploadStore, lanes: Lanes,
        summary_job: Callable[[DocumentRecord], str | None],
    ) -> None:  # fmt: skip
        """`limits`: what reading a file may cost; `summary_job`: the id of the summary job an upload
        that asked for one gets, if any."""
        self.settings, self.registry, self.upload_store, self.lanes = settings, registry, uploads, lanes
        self._limits, self._summary_job = limits, summary_job
        self._loaded: Loaded | None = None
        self._opened = contextlib.AsyncExitStack()  # what `start` opened, to close in reverse
        self._warm_up: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> Loaded:
        """The started parts; asking before `start` has loaded them is a programming error."""
        if self._loaded is None:
            raise RuntimeError("the search parts were asked for before the runtime started")
        return self._loaded

    async def start(self, servers: list[Coroutine[Any, Any, None]]) -> int:
        """Load and open every part while the llama.cpp `servers` start; the ingests a crash
        interrupted, rolled back (how many)."""
        s, lane, logs = self.settings, self.lanes.lifecycle, self.settings.data_dir / "logs"
        # both are built here, not with the holder: each kills the processes an earlier start left
        sandbox = ExtractionSandbox(
            self._limits, s.extract_timeout_s, s.extract_memory_mb, pid_file=logs / "extract-workers.pids"
        )
        # uploads' passages are embedded by a process of their own, which loads its model meanwhile
        # (a server's model needs no process: a request waits on a socket, not on the cores)
        remote = s.profile.embedding.kind == "openai"
        passage_embed = None if remote else ProcessEmbedding(s.profile.embedding, logs / "embedder.pid")
        if passage_embed is not None:
            self._opened.push_async_callback(lane.run, passage_embed.close)
        self._opened.callback(sandbox.close)
        embed_model, *_ = await asyncio.gather(
            lane.run(build_embedding, s.profile.embedding),
            lane.run(warm_up_splitter),
            self._start_embedder(passage_embed),
            *servers,
        )
        if isinstance(embed_model, RemoteEmbedding):
            self._opened.push_async_callback(embed_model.aclose)
        dim = await lane.run(embedding_dim, embed_model)
        store = await lane.run(Store, s, dim, model_tag(s.profile.embedding))
        self._opened.callback(store.close)
        await lane.run(lambda: check_embedded(store, self.registry.chunks_by_space(), s))
        # a note or a page is embedded by the service's own model on the search lane, not queued
        # behind another upload's batches in the embedder process
        small = None if remote else functools.partial(self.lanes.search.call, embed_model.get_text_embedding_batch)
        passages = embed_model if passage_embed is None else passage_embed
        ingestor = Ingestor(
            store, self.registry, passages, s.max_upload_bytes, sandbox.extract, s.max_document_chunks, small
        )  # fmt: skip
        uploads = UploadRunner(
            ingestor, self.registry, self.upload_store, self.lanes.uploads, self.lanes.storage, self._summary_job,
            s.uploads_per_space,
        )  # fmt: skip
        rolled_back = await lane.run(ingestor.recover)
        await lane.run(stamp_older_chunks, store, self.registry)
        # the extraction workers load their parsers after start-up, while the service already answers
        self._warm_up = asyncio.create_task(lane.run(sandbox.warm_up))
        retriever, citer = Retriever(store, embed_model, self.lanes.search), Citer(embed_model, self.lanes.search)
        self._loaded = Loaded(sandbox, embed_model, store, ingestor, uploads, retriever, citer)
        return rolled_back

    async def _start_embedder(self, embedder: ProcessEmbedding | None) -> None:
        """The embedder process: a failure is logged, not fatal — the first upload tries again
        (and fails with `embedder_unavailable` if it cannot)."""
        if embedder is None:
            return
        try:
            await self.lanes.lifecycle.run(embedder.start)
        except EmbedderUnavailable as exc:
            event("[EMBED] Embedder process did not start", exc.message, level=logging.ERROR)

    async def embedding_health(self) -> EmbeddingHealth:
        """`/health`'s embedding check: the server asked now, or the model in this process."""
        return await embedding_health(self.loaded.embed_model)

    async def start_uploads(self) -> int:
        """The upload jobs' bookkeeping: how many jobs of a stopped process were marked failed."""
        return await self.loaded.uploads.start()

    async def stop_uploads(self) -> None:
        """Stop the uploads running here at their next step (none before a start got that far)."""
        if self._loaded is not None:
            await self._loaded.uploads.stop()

    async def close(self) -> None:
        """Close the store, the sandbox and the embedder process — those a start opened."""
        await self._opened.aclose()
