"""The runtime: builds, starts and stops everything the service owns, in one place.

The API's lifespan (and `docassist eval`) start it and stop it; `Assistant` is what callers
use. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import os
import time

from docassist.pipelines.documents.ingestion import Ingestor, warm_up_splitter
from docassist.pipelines.documents.registry import Registry
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint, build_endpoints
from docassist.pipelines.llm.llama_server import LlamaServer
from docassist.pipelines.logs import event
from docassist.pipelines.search.embeddings import build_embedding, embedding_dim
from docassist.pipelines.search.retrieval import Retriever
from docassist.pipelines.search.store import Store
from docassist.pipelines.settings import Settings
from docassist.pipelines.summaries.jobs import JobRunner, make_huey
from docassist.pipelines.summaries.service import SummaryService
from docassist.pipelines.summaries.store import SummaryStore


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.llama_servers: dict[str, LlamaServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.caller = LLMCaller(settings.limits)
        self.started_at = 0.0

    async def start(self) -> None:
        t0 = time.perf_counter()
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        for name, ep in s.endpoints.items():
            if ep.managed and ep.base_url is None:
                spec = s.model_spec(ep.model)
                assert spec is not None
                self.llama_servers[name] = LlamaServer(
                    ep.model, spec.context_window, s.data_dir / "logs", s.llama_server_threads, ep.stall_timeout_s
                )
        servers = [srv.start() for srv in self.llama_servers.values()]
        embed_task = asyncio.to_thread(build_embedding, s.profile.embedding)
        warm_up = asyncio.to_thread(warm_up_splitter)
        self.embed_model, *_ = await asyncio.gather(embed_task, warm_up, *servers)
        dim = await asyncio.to_thread(embedding_dim, self.embed_model)
        self.store = await asyncio.to_thread(Store, s, dim, s.profile.embedding.kind)
        self.registry = Registry(s.db_path)
        self.ingestor = Ingestor(
            self.store, self.registry, self.embed_model, s.files_dir, int(s.max_upload_mb * 1024 * 1024)
        )
        rolled_back = await asyncio.to_thread(self.ingestor.recover)
        self.retriever = Retriever(self.store, self.embed_model)
        managed = {n: (srv.base_url, srv.gguf) for n, srv in self.llama_servers.items()}
        self.endpoints = await asyncio.to_thread(build_endpoints, s, managed)
        for name, srv in self.llama_servers.items():
            srv.watch(self.endpoints[name])
        await asyncio.gather(*(ep.discover() for ep in self.endpoints.values()))
        routing = s.profile.routing
        self.summary_store = SummaryStore(s.db_path)
        self.summaries = SummaryService(
            self.summary_store,
            self.caller,
            self.endpoints[routing.map],
            self.endpoints[routing.reduce],
            self.ingestor.text_of,
            self.ingestor.content_hash,
            lambda r: self.registry.get(r.space_id, r.doc_id) is not None,
        )
        self.jobs = JobRunner(
            make_huey(s.data_dir, os.environ.get("JOBS_REDIS_URL") or None),
            self.summary_store,
            self.registry,
            self.summaries,
            workers=int(os.environ.get("JOB_WORKERS", "2")),
        )
        resumed = self.jobs.start(asyncio.get_running_loop())
        self.started_at = time.time()
        eps = self.endpoints.values()
        event(
            "[STARTUP] docassist ready",
            f"profile={s.profile_name} data_dir={s.data_dir} store={self.store.location} "
            f"collection={self.store.collection}",
            "endpoints: "
            + ", ".join(f"{e.name}={e.provider}:{e.settings.model}@{e.base_url} ({e.tokens.source})" for e in eps),
            f"embedding={self.embed_model.model_name} dim={dim} · rolled back {rolled_back} unfinished ingests · "
            f"{resumed} background jobs resumed · start-up {time.perf_counter() - t0:.1f}s",
            profile=s.profile_name,
        )

    async def stop(self) -> None:
        if hasattr(self, "jobs"):
            self.jobs.stop()
            for _ in range(3):
                await asyncio.sleep(0)  # let cancelled jobs record that they were interrupted
            await self.summaries.close()
            self.summary_store.close()
        await asyncio.gather(*(srv.stop() for srv in self.llama_servers.values()), return_exceptions=True)
        await asyncio.gather(*(ep.close() for ep in self.endpoints.values()), return_exceptions=True)
        if hasattr(self, "registry"):
            self.registry.close()
        if hasattr(self, "store"):
            self.store.close()
