"""The runtime: builds, starts and stops everything the service owns, in one place.

The API's lifespan calls `start()` and `stop()`; routes reach the pipelines through it.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from docassist.pipelines.answers.workflow import AskWorkflow, Mode
from docassist.pipelines.documents.ingestion import Ingestor, check_space_id, warm_up_splitter
from docassist.pipelines.documents.registry import DocumentRecord, Registry
from docassist.pipelines.errors import NotFound
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
from docassist.pipelines.summaries.store import Job, SummaryStore


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.llama_servers: dict[str, LlamaServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.caller = LLMCaller(settings.llm_max_tokens, settings.safety_margin, settings.min_useful_output)
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
                    ep.model, spec.context_window, s.data_dir / "logs", s.llama_server_threads
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
        self.endpoints = build_endpoints(s, {n: srv.base_url for n, srv in self.llama_servers.items()})
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
            "endpoints: " + ", ".join(f"{e.name}={e.provider}:{e.settings.model}@{e.base_url}" for e in eps),
            f"embedding={self.embed_model.model_name} dim={dim} · rolled back {rolled_back} unfinished "
            "ingests · "
            f"{resumed} background jobs resumed · "
            f"start-up {time.perf_counter() - t0:.1f}s",
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
        if hasattr(self, "registry"):
            self.registry.close()
        if hasattr(self, "store"):
            self.store.close()

    def document(self, space_id: str, doc_id: str) -> DocumentRecord:
        check_space_id(space_id)
        record = self.registry.get(space_id, doc_id)
        if record is None:
            raise NotFound(f"no document {doc_id!r} in space {space_id!r}", doc_id=doc_id, space_id=space_id)
        return record

    def summary_status(self, record: DocumentRecord) -> tuple[str, Job | None]:
        """`done` when a summary is cached, else the latest job's status, else `none`."""
        job = self.summary_store.latest_job(record.space_id, record.doc_id)
        if self.summary_store.has_summary(record.space_id, record.doc_id):
            return "done", job
        return (job.status if job else "none"), job

    def delete_document(self, space_id: str, doc_id: str) -> bool:
        if not self.ingestor.delete(space_id, doc_id):
            return False
        self.summary_store.forget_document(space_id, doc_id)
        return True

    async def ask(self, q: str, space_id: str, mode: Mode, top_k: int) -> dict[str, Any]:
        routing = self.settings.profile.routing
        wf = AskWorkflow(
            self.retriever,
            self.caller,
            self.endpoints[routing.answer],
            self.endpoints[routing.map],
            self.endpoints[routing.reduce],
        )
        started = time.perf_counter()
        result = await wf.run(q=q, space_id=space_id, top_k=top_k, mode=mode)
        return {
            **result,
            "mode": mode,
            "usage": wf.usage(),
            "timing": {**wf.timing, "total_s": round(time.perf_counter() - started, 3)},
        }

    def endpoint(self, name: str | None = None) -> Endpoint:
        """An endpoint by name; the answer endpoint when no name is given."""
        name = name or self.settings.profile.routing.answer
        if name not in self.endpoints:
            raise NotFound(f"no endpoint named {name!r}", endpoints=sorted(self.endpoints))
        return self.endpoints[name]

    async def health(self) -> dict[str, Any]:
        llm_checks = await asyncio.gather(*(ep.health() for ep in self.endpoints.values()))
        llm = dict(zip(self.endpoints, llm_checks, strict=True))
        for name, srv in self.llama_servers.items():
            llm[name]["restarts"] = srv.restarts
        store = await asyncio.to_thread(self.store.health)
        any_llm = any(c["ok"] for c in llm.values())
        all_llm = all(c["ok"] for c in llm.values())
        status = "ok" if store["ok"] and all_llm else "degraded" if store["ok"] and any_llm else "unavailable"
        return {"status": status, "checks": {"vector_store": store, "llm": llm}}

    def model_config(self, endpoint: str | None = None) -> dict[str, Any]:
        chosen = self.endpoint(endpoint)

        def describe(ep: Endpoint) -> dict[str, Any]:
            return {
                "model_name": ep.settings.model,
                "provider": ep.provider.lower(),
                "base_url": ep.base_url,
                "context_window": ep.spec.context_window,
                "context_window_source": ep.context_window_source,
                "summarization_threshold": ep.spec.summarization_threshold,
                "summarization_max_output": ep.spec.summarization_max_output,
                "prompt_style": ep.spec.prompt_style,
                "max_concurrency": ep.settings.max_concurrency,
                "timeout_s": ep.settings.timeout_s,
            }

        routing = self.settings.profile.routing
        return {
            **{
                k: v
                for k, v in describe(chosen).items()
                if k
                in (
                    "model_name",
                    "provider",
                    "context_window",
                    "summarization_threshold",
                    "summarization_max_output",
                )
            },
            "endpoint": chosen.name,
            "profile": self.settings.profile_name,
            "max_tokens": self.settings.llm_max_tokens,
            "routing": {"map": routing.map, "reduce": routing.reduce, "answer": routing.answer},
            "endpoints": {name: describe(ep) for name, ep in self.endpoints.items()},
        }
