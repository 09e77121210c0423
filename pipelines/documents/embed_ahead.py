"""Embedding a document's chunks while the rest of it is still being read.

A scan's pages arrive one by one from OCR, which takes seconds a page; embedding them only after
the last page would add the whole embedding time to the upload. The splitter fills chunks greedily
from the start of the text, so the chunks of a prefix are those of the whole text except near the
prefix's end: all but its last `TAIL_CHUNKS` chunks are embedded ahead, on a thread of their own so
the page reader is never held up. The final chunking takes a vector only for a chunk whose text is
exactly one embedded ahead and embeds the rest, so a chunk the full text cut differently is
embedded again, never given another chunk's vector.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from docassist.pipelines.logs import event

TAIL_CHUNKS = 2  # chunks at a prefix's end that its continuation may still change
GROWTH = 1.1  # the prefix is split again once it grew by a tenth: splitting stays O(n log n) in all


class EmbedAhead:
    """Vectors of chunk texts, computed on a thread between `feed`s of a growing text. The thread
    starts at the first feed, embeds a batch at a time, and is stopped and joined (within a batch)
    when the block ends; the thread inherits the creating thread's CPU priority."""

    def __init__(
        self,
        split: Callable[[str], list[str]],
        embed: Callable[[list[str]], list[list[float]]],
        batch: int,
    ) -> None:
        self._split, self._embed, self._batch = split, embed, batch
        self._vectors: dict[str, list[float]] = {}
        self._latest = ""
        self._split_at = 0
        self._todo: list[str] = []
        self._stopped = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EmbedAhead:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def feed(self, text_so_far: str) -> None:
        """The document's text read so far: its settled chunks are embedded from now on."""
        with self._wake:
            if self._stopped:
                return
            self._latest = text_so_far
            self._wake.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="docassist-embed-ahead", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """No more embedding ahead; returns once the batch being embedded is done."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()

    def vector(self, chunk: str) -> list[float] | None:
        """The vector embedded ahead for exactly this chunk text, if any."""
        return self._vectors.get(chunk)

    def __len__(self) -> int:
        return len(self._vectors)

    def _next_batch(self) -> list[str] | None:
        """The next chunks to embed, once there are any; None once stopped."""
        with self._wake:
            while True:
                if self._stopped:
                    return None
                if len(self._latest) >= max(self._split_at * GROWTH, 1):
                    self._split_at = len(self._latest)
                    text = self._latest
                    self._wake.release()  # split outside the lock: `feed` never waits for it
                    try:
                        settled = self._split(text)[:-TAIL_CHUNKS]
                    finally:
                        self._wake.acquire()
                    self._todo = [chunk for chunk in dict.fromkeys(settled) if chunk not in self._vectors]
                if self._todo:
                    batch, self._todo = self._todo[: self._batch], self._todo[self._batch :]
                    return batch
                self._wake.wait()

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._vectors.update(zip(batch, self._embed(batch), strict=True))
        except Exception as exc:  # what was not embedded ahead is embedded after the last page
            event("[INGEST] Embedding ahead stopped", f"{type(exc).__name__}: {exc}", level=logging.WARNING)
