"""Dense vectors from a server that answers OpenAI's `/v1/embeddings` (`EMBEDDING_KIND=openai`).

vLLM serving a pooling model, Hugging Face TEI, Ollama and Infinity embed the text they are sent
as it comes, so the model's prefixes (`config/embedding_models.json`: e5's `query: ` and
`passage: `, none for bge-m3) are written here. Every answer is checked before a vector is used
(`read_vectors`): one vector per text, placed by its `index` (the order of `data` is not promised),
each of the model's dimension, as floats or base64 (asked for; Ollama ignores the ask and sends
floats). Anything else is `embedding_invalid`, and the caller stores nothing.

A search's query is a request of its own on the event loop, never queued behind an upload's
passages, which go `batch_size` to a request and `concurrency` requests at once. A server that is
gone costs one timeout, not one per request: after a request fails for want of the server, calls
are refused at once (`embedding_unavailable`, 503) until the health check — every 5 s — reaches it
again, or, where none runs (`docassist reembed`), `RETRY_S` later.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from docassist.pipelines.errors import EmbeddingInvalid, EmbeddingRefused, EmbeddingUnavailable
from docassist.pipelines.settings import EmbeddingModelSpec, EmbeddingSettings

QUERY_TIMEOUT_S = 10.0  # a search waits at most this for its query's vector (EMBEDDING_TIMEOUT_S if shorter)
PROBE_TIMEOUT_S = 5.0  # the health check's request: within the health monitor's wait
RETRY_S = 5.0  # with no health check, how long a server that failed is refused before it is asked again
MESSAGE_CHARS = 300  # of a server's error text quoted in ours


@dataclass
class EmbeddingHealth:
    """The embedding model as `/health` shows it: where it runs, which model, whether it answers."""

    ok: bool
    kind: str
    model: str
    dimension: int | None = None
    server: str | None = None  # the server's address: operators only
    latency_ms: float | None = None
    error: str | None = None


def read_vectors(response: httpx.Response, count: int, spec: EmbeddingModelSpec, where: str) -> list[list[float]]:
    """The `count` vectors of an answer, in the order of the texts sent; the server's refusals and
    failures as typed errors (see the module's docstring). `where` names the server in them: by its
    model, as any caller may read them (its address is for operators: `/health`)."""
    if response.status_code != 200:
        raise _refusal(response, where)
    try:
        data = response.json()["data"]
        items = [(int(d.get("index", i)), d["embedding"]) for i, d in enumerate(data)]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EmbeddingInvalid(f"the embedding server of {where} answered no `data` list of embeddings") from exc
    if sorted(i for i, _ in items) != list(range(count)):
        raise EmbeddingInvalid(
            f"the embedding server of {where} answered {len(items)} vectors (indexes "
            f"{sorted(i for i, _ in items)[:8]}…) for {count} texts",
            texts=count,
            vectors=len(items),
        )
    vectors: list[list[float]] = [[] for _ in range(count)]
    for index, raw in items:
        vector = _decoded(raw, where)
        if vector.shape != (spec.dimension,) or not np.isfinite(vector).all():
            raise EmbeddingInvalid(
                f"the embedding server of {where} answered vectors of {vector.size} dimensions; {spec.name} makes "
                f"{spec.dimension} (config/embedding_models.json) — is EMBEDDING_MODEL the model it serves?",
                dimension=int(vector.size),
                expected=spec.dimension,
            )
        vectors[index] = vector.tolist()
    return vectors


def _decoded(raw: Any, where: str) -> np.ndarray:
    """One embedding as floats: a JSON list, or base64 of little-endian float32 (OpenAI's form)."""
    try:
        if isinstance(raw, str):
            return np.frombuffer(base64.b64decode(raw, validate=True), dtype="<f4").astype(np.float64)
        return np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise EmbeddingInvalid(f"the embedding server of {where} answered an embedding that is not numbers") from exc


def _refusal(response: httpx.Response, where: str) -> Exception:
    """A non-200 answer as our error: the text refused (400, 413, 422), or the server unusable."""
    status, text = response.status_code, _server_message(response)
    if status in (400, 413, 422):
        return EmbeddingRefused(f"the embedding server refused the text ({status}): {text}", status=status)
    if status == 404:
        return EmbeddingUnavailable(f"the embedding server of {where} does not serve the model (404): {text}")
    if status in (401, 403):
        return EmbeddingUnavailable(f"the embedding server of {where} refused our key, EMBEDDING_API_KEY ({status})")
    return EmbeddingUnavailable(f"the embedding server of {where} failed ({status}): {text}", status=status)


def _server_message(response: httpx.Response) -> str:
    """The message of an error body in vLLM's forms (`{"error": {"message"}}`, or flat), or its text."""
    try:
        body = response.json()
        inner = body.get("error", body) if isinstance(body, dict) else body
        message = inner.get("message", inner) if isinstance(inner, dict) else inner
    except ValueError:
        message = response.text
    return str(message)[:MESSAGE_CHARS]


class RemoteEmbedding(BaseEmbedding):
    """A LlamaIndex embedding whose vectors come from an OpenAI-compatible embeddings server."""

    model_name: str = "remote"
    _settings: EmbeddingSettings = PrivateAttr()
    _spec: EmbeddingModelSpec = PrivateAttr()
    _client: httpx.Client = PrivateAttr()
    _async: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = PrivateAttr(default=None)
    _pool: ThreadPoolExecutor = PrivateAttr()
    _down: tuple[float, str] | None = PrivateAttr(default=None)  # since when (monotonic), and why
    _answered_at: float = PrivateAttr(default=float("-inf"))  # the last good answer (monotonic)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, settings: EmbeddingSettings, **kwargs: Any) -> None:
        if settings.spec is None or settings.url is None or settings.model is None:
            raise ValueError("a remote embedding needs EMBEDDING_URL, EMBEDDING_MODEL and the model's facts")
        # llama-index hands `_get_text_embeddings` this many texts: one round of concurrent requests
        super().__init__(
            model_name=settings.model, embed_batch_size=settings.batch_size * settings.concurrency, **kwargs
        )
        self._settings, self._spec = settings, settings.spec
        self._client = httpx.Client(timeout=self._timeout(settings.timeout_s), headers=self._headers(),
                                    limits=httpx.Limits(max_connections=settings.concurrency + 2))  # fmt: skip
        # an upload's requests in flight: threads that wait on sockets, not on the cores
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="embed-remote")

    @classmethod
    def class_name(cls) -> str:
        return "RemoteEmbedding"

    @property
    def dimension(self) -> int:
        return self._spec.dimension

    @property
    def max_tokens(self) -> int:
        return self._spec.max_tokens

    @property
    def url(self) -> str:
        return f"{str(self._settings.url).rstrip('/')}/embeddings"

    def _headers(self) -> dict[str, str]:
        key = self._settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    @staticmethod
    def _timeout(seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(seconds, 5.0))

    def _body(self, texts: Sequence[str]) -> dict[str, Any]:
        return {"model": self.model_name, "input": list(texts), "encoding_format": "base64"}

    # the state of the server, as the last request and the health check found it

    def _check_up(self) -> None:
        down = self._down
        if down is not None and time.monotonic() - down[0] < RETRY_S:
            raise EmbeddingUnavailable(f"{down[1]} (refused at once until it answers again)")

    def _failed(self, exc: Exception, probe: bool = False) -> EmbeddingUnavailable:
        """What a request that did not get its answer becomes; the server is marked down — but not
        by a health check that timed out: a busy server answers a one-text probe late, behind the
        batches it is embedding, and is not gone for that."""
        timed_out = isinstance(exc, httpx.TimeoutException)
        if timed_out:
            why = f"the embedding server of {self.model_name} did not answer in time ({type(exc).__name__})"
        else:
            why = f"the embedding server of {self.model_name} cannot be reached ({type(exc).__name__}: {exc})"
        if not (probe and timed_out):
            with self._lock:
                self._down = (time.monotonic(), why)
        return EmbeddingUnavailable(why)

    def _answered(self, response: httpx.Response, count: int) -> list[list[float]]:
        try:
            vectors = read_vectors(response, count, self._spec, self.model_name)
        except EmbeddingUnavailable as exc:
            if not isinstance(exc, EmbeddingInvalid):  # a server error: down until it answers well again
                with self._lock:
                    self._down = (time.monotonic(), exc.message)
            raise
        self._down, self._answered_at = None, time.monotonic()
        return vectors

    # requests

    def _post(self, texts: Sequence[str], timeout: float | None = None) -> list[list[float]]:
        self._check_up()
        try:
            extra = {} if timeout is None else {"timeout": self._timeout(timeout)}
            response = self._client.post(self.url, json=self._body(texts), **extra)
        except httpx.HTTPError as exc:
            raise self._failed(exc) from exc
        return self._answered(response, len(texts))

    async def _apost(self, texts: Sequence[str], timeout: float, probe: bool = False) -> list[list[float]]:
        if not probe:
            self._check_up()
        try:
            response = await self._async_client().post(self.url, json=self._body(texts), timeout=self._timeout(timeout))
        except httpx.HTTPError as exc:
            raise self._failed(exc, probe) from exc
        return self._answered(response, len(texts))

    def _async_client(self) -> httpx.AsyncClient:
        """The async client of the running event loop (one is bound to the loop it was made on)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, httpx.AsyncClient(headers=self._headers()))
        return self._async[1]

    def _query_timeout(self) -> float:
        return min(self._settings.timeout_s, QUERY_TIMEOUT_S)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._post([self._spec.query_prefix + query], self._query_timeout())[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._apost([self._spec.query_prefix + query], self._query_timeout()))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        """Passages, `batch_size` to a request and the requests at once; all or an error."""
        prefixed = [self._spec.passage_prefix + t for t in texts]
        size = self._settings.batch_size
        batches = [prefixed[i : i + size] for i in range(0, len(prefixed), size)]
        if len(batches) <= 1:
            return self._post(prefixed) if prefixed else []
        return [vector for batch in self._pool.map(self._post, batches) for vector in batch]

    async def health(self) -> EmbeddingHealth:
        """Embed one short text now (the check of `/health`): whether the server answers the
        model's vectors, in how long; a server found back is used again at once. A probe that times
        out while our other requests get their answers finds the server busy, not down."""
        started, since = time.perf_counter(), time.monotonic()
        try:
            await self._apost(
                [self._spec.query_prefix + "health"], min(PROBE_TIMEOUT_S, self._settings.timeout_s), True
            )
        except (EmbeddingUnavailable, EmbeddingRefused) as exc:
            busy = self._answered_at > since and self._down is None
            return self._health(busy, error=None if busy else exc.message)
        return self._health(True, latency_ms=round((time.perf_counter() - started) * 1000, 1))

    def _health(self, ok: bool, **values: Any) -> EmbeddingHealth:
        return EmbeddingHealth(ok, "openai", self.model_name, self.dimension, str(self._settings.url), **values)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def aclose(self) -> None:
        """Close the connections, the event loop's too (from that loop)."""
        self.close()
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].aclose()
        self._async = None
