"""The runtime: builds, starts and stops everything a process owns, in one place.

Two roles share it. `serve` (the HTTP service; also `docassist eval`) owns everything: the
LLM endpoints (and the llama.cpp server on the local profile), the embedding model, the
vector store, the database, the summary runs and the job workers. `worker` (`docassist worker`)
owns what background summaries need: endpoints, database, summary runs and job workers — no
search parts (`search` is None), so it runs beside the one process that holds the Qdrant Edge shard.
`Assistant` is what callers use. Nothing here knows about HTTP.

Every part exists once `__init__` returns, built without touching a model or a server; `start`
loads and opens what needs it — the llama.cpp servers (their GGUF assembled), the endpoints
(their windows asked for), the search parts (the embedding model, then the store of its
dimension) — on the lifecycle lane, and `stop` stops what a start, whole or partial, began.
The serving role also owns the thread lanes (`lanes.py`) and the health monitor, which keeps
`/health`'s report current in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from docassist.pipelines.answers.summary_sources import SummarySources
from docassist.pipelines.documents.ingestion import Ingestor, warm_up_splitter
from docassist.pipelines.documents.limits import ExtractLimits
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.documents.sandbox import ExtractionSandbox
from docassist.pipelines.documents.upload_store import UploadStore
from docassist.pipelines.health import HealthReport, assess
from docassist.pipelines.health_monitor import HealthMonitor
from docassist.pipelines.identity.config import IdentityConfig
from docassist.pipelines.identity.service import Identity
from docassist.pipelines.lanes import Lanes
from docassist.pipelines.llm import prompts
from docassist.pipelines.llm.budget import Limits
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint, ManagedServer, build_endpoints
from docassist.pipelines.llm.llama_server import LlamaServer
from docassist.pipelines.llm.shared_slots import SharedSlots, server_identity
from docassist.pipelines.logs import event
from docassist.pipelines.search.collections import check_embedded
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim, model_tag
from docassist.pipelines.search.store import Store
from docassist.pipelines.search_parts import SearchParts
from docassist.pipelines.settings import Settings
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.private import secure_data_dir
from docassist.pipelines.storage.redis import connect as redis_connect
from docassist.pipelines.storage.redis import health as redis_health
from docassist.pipelines.summaries.events import SummarySentence
from docassist.pipelines.summaries.first_release import adopt_first_release
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
        s = settings
        self.settings, self.role = s, role
        prompts.use_version(s.prompt_version)
        self.tightened = secure_data_dir(s.data_dir)  # before anything is written there
        self.part_limits = PartLimits.of(s)
        self.caller = LLMCaller(self.part_limits.llm)
        self.db = Database.for_data_dir(s.database_url, s.data_dir)
        self.registry = Registry(self.db)
        self.summary_store = SummaryStore(self.db)
        self.job_store = JobStore(self.db)
        self.redis = redis_connect(s.redis_url) if s.redis_url else None
        self.lanes = Lanes.build(s.upload_workers, s.upload_queue)
        # filled by `start`: a server needs its GGUF assembled, an endpoint its server's address
        self.llama_servers: dict[str, LlamaServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        board = SharedFlightBoard(self.redis) if self.redis is not None else LocalFlightBoard()
        self.summaries = SummaryService(
            self.summary_store, self.caller, self.endpoints, s.profile.routing, self.registry, board,
            self.lanes.storage, sourcer=self._summary_sentences if role == "serve" else None,
        )  # fmt: skip
        self.jobs = JobRunner(
            make_huey(s.data_dir, s.redis_url),  # the SQLite queue makes its table in DATA_DIR, made above
            self.job_store,
            self.registry,
            self.summaries,
            self.lanes.storage,
            workers=s.job_workers if role == "serve" else max(1, s.job_workers),
            shared=self.db.shared,
            lease_s=s.job_lease_s,
        )
        self.search: SearchParts | None = None
        self.identity: Identity | None = None
        if role == "serve":
            # the only serving process: SQLite, and no supervisor of `serve --workers N` above it
            alone = not self.db.shared and "DOCASSIST_SUPERVISOR_PID" not in s.environment
            config = IdentityConfig.from_env(s.environment)
            self.identity = Identity(config, self.db, self.lanes, self.redis, alone)
            uploads = UploadStore(self.db)
            self.search = SearchParts(
                s, self.part_limits.extract, self.registry, uploads, self.lanes, self.jobs.summary_job_id_for
            )
        self.health_monitor = HealthMonitor(self.check_health)

    async def start(self) -> None:
        t0 = time.perf_counter()
        s, lane = self.settings, self.lanes.lifecycle
        s.data_dir.mkdir(parents=True, exist_ok=True)
        revision = await lane.run(self.db.migrate, s.files_dir)
        self.llama_servers.update(await lane.run(self._llama_servers))
        servers = [srv.start() for srv in self.llama_servers.values()]
        if self.search is not None:
            rolled_back = await self.search.start(servers)
        else:
            await asyncio.gather(lane.run(warm_up_splitter), *servers)
            rolled_back = 0
        await self._start_endpoints()
        await lane.run(adopt_first_release, self.summaries, self.summary_store, self.job_store)
        resumed = self.jobs.start(asyncio.get_running_loop())
        if self.identity is not None:
            self.identity.start()
        if self.search is not None:
            lost = await self.search.start_uploads()
            if lost:
                event(
                    "[INGEST] Uploads lost",
                    f"{lost} upload job(s) of a stopped process marked failed",
                    level=logging.WARNING,
                )
            await self.health_monitor.start()
        self._log_ready(time.perf_counter() - t0, revision, rolled_back, resumed)

    def _log_ready(self, seconds: float, revision: str, rolled_back: int, resumed: int) -> None:
        s, eps = self.settings, self.endpoints.values()
        searching = self.search.loaded if self.search is not None else None
        event(
            "[STARTUP] docassist ready",
            f"role={self.role} profile={s.profile_name} data_dir={s.data_dir} database={self.db.location} "
            f"(revision {revision})"
            + (f" store={searching.store.location} collection={searching.store.collection}" if searching else ""),
            "endpoints: "
            + ", ".join(f"{e.name}={e.provider}:{e.settings.model}@{e.base_url} ({e.tokens.source})" for e in eps),
            (f"embedding={searching.embed_model.model_name} dim={searching.store.dim} · " if searching else "")
            + f"rolled back {rolled_back} unfinished ingests · {resumed} background jobs resumed · "
            f"{self.jobs.workers} job workers · start-up {seconds:.1f}s",
            f"data directory readable by this user only (0700/0600): {self.tightened} looser path(s) tightened",
            profile=s.profile_name,
            role=self.role,
        )

    async def _summary_sentences(self, record: DocumentRecord, summary: str) -> list[SummarySentence]:
        """A summary's sentences tied to their passages by the serving role's search parts."""
        assert self.search is not None  # only the serving role is given this
        parts = self.search.loaded
        sources = SummarySources(parts.retriever, parts.citer, self.registry.text_of, self.lanes.storage)
        return await sources.sentences(record, summary)

    def _llama_servers(self) -> dict[str, LlamaServer]:
        """The llama.cpp servers this process runs itself: managed endpoints without an address.
        Blocking: each assembles its GGUF the first time."""
        s, servers = self.settings, {}
        for name, ep in s.endpoints.items():
            if ep.managed and ep.base_url is None:
                spec = s.model_spec(ep.model)
                assert spec is not None
                servers[name] = LlamaServer(
                    ep.model, spec.context_window, s.data_dir / "logs", s.llama_server_threads, ep.stall_timeout_s
                )
        return servers

    async def _start_endpoints(self) -> None:
        """The LLM endpoints, their shared slots (with Redis) and their context windows."""
        count, servers = self.lanes.tokens, self.llama_servers  # count: where GGUF vocabularies count long texts
        managed = {n: ManagedServer(srv.base_url, srv.gguf, srv.api_key, count) for n, srv in servers.items()}
        built = await self.lanes.lifecycle.run(build_endpoints, self.settings, managed)
        self.endpoints.update(built)
        if self.redis is not None:  # one concurrency limit per endpoint across every process
            for ep in self.endpoints.values():
                ep.limiter = SharedSlots(self.redis, server_identity(ep.base_url), ep.settings.max_concurrency)
        for name, srv in self.llama_servers.items():
            srv.watch(self.endpoints[name])
        await asyncio.gather(*(ep.discover() for ep in self.endpoints.values()))

    async def check_health(self) -> HealthReport:
        """Ask every part now, all at once (a refresh takes as long as its slowest check): the vector
        store and the database on the health lane's threads, Redis and the LLM endpoints over their
        own connections, the embedding server with a request of its own. The serving role's monitor
        asks it: the worker role has no vector store."""
        assert self.search is not None, "only the serving role checks its health"
        names = list(self.endpoints)
        lane = self.lanes.health
        llm_checks = asyncio.gather(*(self.endpoints[n].health() for n in names))
        redis_check = redis_health(self.redis) if self.redis is not None else asyncio.sleep(0)  # no Redis: None
        store, database, checks, shared, embedding = await asyncio.gather(
            lane.run(self.search.loaded.store.health), lane.run(self.db.health), llm_checks, redis_check,
            self.search.embedding_health(),
        )  # fmt: skip
        llm = dict(zip(names, checks, strict=True))
        for name, server in self.llama_servers.items():
            llm[name].restarts = server.restarts
        routing = self.settings.profile.routing
        steps = {step: self.endpoints[getattr(routing, step)] for step in ("map", "reduce", "answer")}
        return assess(store, database, shared, llm, steps, embedding)

    async def stop(self) -> None:
        """Stop everything, in order; safe after a start that failed part way, or none."""
        await self.health_monitor.stop()
        if self.identity is not None:
            await self.identity.stop()
        if self.search is not None:
            await self.search.stop_uploads()
        self.jobs.stop()
        for _ in range(3):
            await asyncio.sleep(0)  # let cancelled jobs record that they were interrupted
        await self.summaries.close()
        await asyncio.gather(*(srv.stop() for srv in self.llama_servers.values()), return_exceptions=True)
        await asyncio.gather(*(ep.close() for ep in self.endpoints.values()), return_exceptions=True)
        if self.search is not None:
            await self.search.close()
        if self.redis is not None:
            await self.redis.aclose()
        self.db.close()
        self.lanes.close()


@contextlib.contextmanager
def ingestion_only(settings: Settings) -> Iterator[Ingestor]:
    """Ingestion on DATA_DIR without LLMs or jobs: `docassist ingest` with no service running,
    and the evaluations. Files are read in the extraction sandbox, as the service reads them:
    the same untrusted files get the same time and memory caps. Its workers are this process's
    children only (no pid file: whatever a service left running is not this command's to kill)."""
    secure_data_dir(settings.data_dir)
    db = Database.for_data_dir(settings.database_url, settings.data_dir)
    db.migrate(settings.files_dir)
    embed = build_embedding(settings.profile.embedding)
    store = Store(settings, embedding_dim(embed), model_tag(settings.profile.embedding))
    registry = Registry(db)
    limits = PartLimits.of(settings).extract
    sandbox = ExtractionSandbox(limits, settings.extract_timeout_s, settings.extract_memory_mb, render_workers=0)
    try:
        check_embedded(store, registry.chunks_by_space(), settings)  # not beside documents of another model
        yield Ingestor(
            store,
            registry,
            embed,
            settings.max_upload_bytes,
            sandbox.extract,
            settings.max_document_chunks,
        )
    finally:
        sandbox.close()
        store.close()
        db.close()
