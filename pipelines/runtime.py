"""The runtime: builds, starts and stops everything a process owns, in one place.

Two roles share it. `serve` (the HTTP service; also `docassist eval`) owns everything: the
LLM endpoints (and the llama.cpp server on the local profile), the embedding model, the
vector store, the database, the summary runs and the job workers. `worker` (`docassist worker`)
owns what background summaries need: endpoints, database, summary runs and job workers — no
vector store and no embedding model, so it runs beside the one process that holds the Qdrant Edge shard.
`Assistant` is what callers use. Nothing here knows about HTTP.

The serving role also owns the thread lanes (`lanes.py`: uploads apart from storage reads, search
and health) and the health monitor, which keeps `/health`'s report current in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from docassist.pipelines.answers.citations import Citer
from docassist.pipelines.documents.extract import ExtractLimits, extract_document
from docassist.pipelines.documents.ingestion import Ingestor, warm_up_splitter
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.documents.sandbox import ExtractionSandbox
from docassist.pipelines.documents.upload_store import UploadStore
from docassist.pipelines.documents.uploads import UploadRunner
from docassist.pipelines.errors import EmbedderUnavailable
from docassist.pipelines.health import HealthReport, assess
from docassist.pipelines.health_monitor import HealthMonitor
from docassist.pipelines.lanes import Lanes
from docassist.pipelines.llm import prompts
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint, ManagedServer, build_endpoints
from docassist.pipelines.llm.llama_server import LlamaServer
from docassist.pipelines.llm.shared_slots import SharedSlots, server_identity
from docassist.pipelines.logs import event
from docassist.pipelines.search.embedder_process import ProcessEmbedding
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim
from docassist.pipelines.search.retrieval import Retriever
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import Settings
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.first_release import adopt_first_release
from docassist.pipelines.storage.private import secure_data_dir
from docassist.pipelines.storage.redis import connect as redis_connect
from docassist.pipelines.storage.redis import health as redis_health
from docassist.pipelines.summaries.jobs.runner import JobRunner, make_huey
from docassist.pipelines.summaries.jobs.store import JobStore
from docassist.pipelines.summaries.runs.board import LocalFlightBoard
from docassist.pipelines.summaries.runs.service import SummaryService
from docassist.pipelines.summaries.runs.shared_board import SharedFlightBoard
from docassist.pipelines.summaries.runs.store import SummaryStore

Role = Literal["serve", "worker"]


@dataclass(frozen=True)
class PartLimits:
    """The limits the parts declare themselves, each read by its owner's group from the
    settings' environment: what reading a file may cost, and what one LLM call may."""

    extract: ExtractLimits
    llm: Limits

    @classmethod
    def of(cls, settings: Settings) -> PartLimits:
        """`ConfigError` naming the variable when one is bad: a start refuses it like a bad setting."""
        return cls(ExtractLimits.from_env(settings.environment), Limits.from_env(settings.environment))


class Runtime:
    def __init__(self, settings: Settings, role: Role = "serve") -> None:
        self.settings, self.role = settings, role
        prompts.use_version(settings.prompt_version)
        self.tightened = secure_data_dir(settings.data_dir)  # before anything is written there
        self.llama_servers: dict[str, LlamaServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.part_limits = PartLimits.of(settings)
        self.caller = LLMCaller(self.part_limits.llm)
        self.db = Database.for_data_dir(settings.database_url, settings.data_dir)
        self.registry = Registry(self.db)
        self.summary_store = SummaryStore(self.db)
        self.job_store = JobStore(self.db)
        self.redis = redis_connect(settings.redis_url) if settings.redis_url else None
        self.lanes = Lanes.build(settings.upload_workers, settings.upload_queue)
        self.health_monitor = HealthMonitor(self.check_health)

    async def start(self) -> None:
        t0 = time.perf_counter()
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        revision = await asyncio.to_thread(self.db.migrate, s.files_dir)
        servers = [srv.start() for srv in self._llama_servers().values()]
        searching = self.role == "serve"
        if searching:
            rolled_back = await self._start_search(servers)
        else:
            await asyncio.gather(asyncio.to_thread(warm_up_splitter), *servers)
            rolled_back = 0
        await self._start_endpoints()
        workers, resumed = await self._start_summaries()
        if searching:
            lost = await self.uploads.start()
            if lost:
                event(
                    "[INGEST] Uploads lost",
                    f"{lost} upload job(s) of a stopped process marked failed",
                    level=logging.WARNING,
                )
            await self.health_monitor.start()
        eps = self.endpoints.values()
        event(
            "[STARTUP] docassist ready",
            f"role={self.role} profile={s.profile_name} data_dir={s.data_dir} database={self.db.location} "
            f"(revision {revision})"
            + (f" store={self.store.location} collection={self.store.collection}" if searching else ""),
            "endpoints: "
            + ", ".join(f"{e.name}={e.provider}:{e.settings.model}@{e.base_url} ({e.tokens.source})" for e in eps),
            (f"embedding={self.embed_model.model_name} dim={self.store.dim} · " if searching else "")
            + f"rolled back {rolled_back} unfinished ingests · {resumed} background jobs resumed · "
            f"{workers} job workers · start-up {time.perf_counter() - t0:.1f}s",
            f"data directory readable by this user only (0700/0600): {self.tightened} looser path(s) tightened",
            profile=s.profile_name,
            role=self.role,
        )

    def _llama_servers(self) -> dict[str, LlamaServer]:
        """The llama.cpp servers this process runs itself: managed endpoints without an address."""
        s = self.settings
        for name, ep in s.endpoints.items():
            if ep.managed and ep.base_url is None:
                spec = s.model_spec(ep.model)
                assert spec is not None
                self.llama_servers[name] = LlamaServer(
                    ep.model, spec.context_window, s.data_dir / "logs", s.llama_server_threads, ep.stall_timeout_s
                )
        return self.llama_servers

    async def _start_search(self, servers: list[Coroutine[Any, Any, None]]) -> int:
        """The serving role's own parts — the extraction sandbox, the embedding model, the vector
        store, the ingestor and its upload jobs, the retriever — while the llama.cpp servers start;
        the ingests a crash interrupted, rolled back."""
        s = self.settings
        self.sandbox = ExtractionSandbox(
            self.part_limits.extract,
            s.extract_timeout_s,
            s.extract_memory_mb,
            pid_file=s.data_dir / "logs" / "extract-workers.pids",
        )
        embed_task = asyncio.to_thread(build_embedding, s.profile.embedding)
        # uploads' passages are embedded by a process of their own, which loads its model meanwhile
        self.passage_embed = ProcessEmbedding(s.profile.embedding, s.data_dir / "logs" / "embedder.pid")
        self.embed_model, *_ = await asyncio.gather(
            embed_task, asyncio.to_thread(warm_up_splitter), self._start_embedder(), *servers
        )
        dim = await asyncio.to_thread(embedding_dim, self.embed_model)
        self.store = await asyncio.to_thread(Store, s, dim, s.profile.embedding.kind)
        # a note or a page is embedded by the service's own model on the search lane, not queued
        # behind another upload's batches in the embedder process
        embed_small = functools.partial(self.lanes.search.call, self.embed_model.get_text_embedding_batch)
        self.ingestor = Ingestor(
            self.store, self.registry, self.passage_embed, s.max_upload_bytes, self.sandbox.extract,
            s.max_document_chunks, embed_small,
        )  # fmt: skip
        self.uploads = UploadRunner(
            self.ingestor, self.registry, UploadStore(self.db), self.lanes.uploads, self.lanes.storage,
            self._summary_job_for, s.uploads_per_space,
        )  # fmt: skip
        rolled_back = await asyncio.to_thread(self.ingestor.recover)
        # the extraction workers load their parsers after start-up, while the service already answers
        self._sandbox_warm_up = asyncio.create_task(asyncio.to_thread(self.sandbox.warm_up))
        self.retriever = Retriever(self.store, self.embed_model, self.lanes.search)
        self.citer = Citer(self.embed_model, self.lanes.search)
        return rolled_back

    async def _start_embedder(self) -> None:
        """The embedder process: a failure is logged, not fatal — the first upload tries again
        (and fails with `embedder_unavailable` if it cannot)."""
        try:
            await asyncio.to_thread(self.passage_embed.start)
        except EmbedderUnavailable as exc:
            event("[EMBED] Embedder process did not start", exc.message, level=logging.ERROR)

    async def _start_endpoints(self) -> None:
        """The LLM endpoints, their shared slots (with Redis) and their context windows."""
        managed = {n: ManagedServer(srv.base_url, srv.gguf, srv.api_key) for n, srv in self.llama_servers.items()}
        self.endpoints = await asyncio.to_thread(build_endpoints, self.settings, managed)
        if self.redis is not None:  # one concurrency limit per endpoint across every process
            for ep in self.endpoints.values():
                ep.limiter = SharedSlots(self.redis, server_identity(ep.base_url), ep.settings.max_concurrency)
        for name, srv in self.llama_servers.items():
            srv.watch(self.endpoints[name])
        await asyncio.gather(*(ep.discover() for ep in self.endpoints.values()))

    async def _start_summaries(self) -> tuple[int, int]:
        """The summary runs and the background job workers: how many workers, and jobs resumed."""
        s, routing = self.settings, self.settings.profile.routing
        self.summaries = SummaryService(
            self.summary_store,
            self.caller,
            self.endpoints[routing.map],
            self.endpoints[routing.reduce],
            self.registry,
            SharedFlightBoard(self.redis) if self.redis is not None else LocalFlightBoard(),
        )
        await asyncio.to_thread(adopt_first_release, self.summaries, self.summary_store, self.job_store)
        workers = s.job_workers if self.role == "serve" else max(1, s.job_workers)
        self.jobs = JobRunner(
            make_huey(s.data_dir, s.redis_url),
            self.job_store,
            self.registry,
            self.summaries,
            workers=workers,
            shared=self.db.shared,
            lease_s=s.job_lease_s,
        )
        return workers, self.jobs.start(asyncio.get_running_loop())

    def _summary_job_for(self, record: DocumentRecord) -> str | None:
        """After an upload with `generate_summary`: a summary job, unless the summary exists."""
        if self.summary_store.existing([self.summaries.cache_key(record, record.language)]):
            return None
        return self.jobs.submit(record, record.language).job_id

    async def check_health(self) -> HealthReport:
        """Ask every part now, all at once (a refresh takes as long as its slowest check): the vector
        store and the database on the health lane's threads, Redis and the LLM endpoints over their
        own connections."""
        names = list(self.endpoints)
        lane = self.lanes.health
        llm_checks = asyncio.gather(*(self.endpoints[n].health() for n in names))
        redis_check = redis_health(self.redis) if self.redis is not None else asyncio.sleep(0)  # no Redis: None
        store, database, checks, shared = await asyncio.gather(
            lane.run(self.store.health), lane.run(self.db.health), llm_checks, redis_check
        )
        llm = dict(zip(names, checks, strict=True))
        for name, server in self.llama_servers.items():
            llm[name].restarts = server.restarts
        routing = self.settings.profile.routing
        steps = {step: self.endpoints[getattr(routing, step)] for step in ("map", "reduce", "answer")}
        return assess(store, database, shared, llm, steps)

    async def stop(self) -> None:
        await self.health_monitor.stop()
        if hasattr(self, "uploads"):
            await self.uploads.stop()
        if hasattr(self, "jobs"):
            self.jobs.stop()
            for _ in range(3):
                await asyncio.sleep(0)  # let cancelled jobs record that they were interrupted
        if hasattr(self, "summaries"):
            await self.summaries.close()
        await asyncio.gather(*(srv.stop() for srv in self.llama_servers.values()), return_exceptions=True)
        await asyncio.gather(*(ep.close() for ep in self.endpoints.values()), return_exceptions=True)
        if hasattr(self, "store"):
            self.store.close()
        if hasattr(self, "sandbox"):
            self.sandbox.close()
        if hasattr(self, "passage_embed"):
            await asyncio.to_thread(self.passage_embed.close)
        if self.redis is not None:
            await self.redis.aclose()
        self.db.close()
        self.lanes.close()


@contextlib.contextmanager
def ingestion_only(settings: Settings) -> Iterator[Ingestor]:
    """Ingestion on DATA_DIR without LLMs or jobs: `docassist ingest` with no service running,
    and the retrieval evaluation."""
    secure_data_dir(settings.data_dir)
    db = Database.for_data_dir(settings.database_url, settings.data_dir)
    db.migrate(settings.files_dir)
    embed = build_embedding(settings.profile.embedding)
    store = Store(settings, embedding_dim(embed), settings.profile.embedding.kind)
    limits = PartLimits.of(settings).extract
    try:
        yield Ingestor(
            store,
            Registry(db),
            embed,
            settings.max_upload_bytes,
            functools.partial(extract_document, limits=limits),
            settings.max_document_chunks,
        )
    finally:
        store.close()
        db.close()
