"""Embedding a document's chunks while the rest of it is still being read.

A scan's pages arrive one by one from OCR, which takes seconds a page; embedding them only after
the last page would add the whole embedding time to the upload. The splitter fills chunks greedily
from the start of the text, so the chunks of a prefix are those of the whole text except near the
prefix's end: all but its last `TAIL_CHUNKS` chunks are embedded ahead. The final chunking takes a
vector only for a chunk whose text is exactly one embedded ahead and embeds the rest, so a chunk
the full text cut differently is embedded again, never given another chunk's vector.
"""

from __future__ import annotations

from collections.abc import Callable

TAIL_CHUNKS = 2  # chunks at a prefix's end that its continuation may still change
GROWTH = 1.1  # the prefix is split again once it grew by a tenth: splitting stays O(n log n) in all


class EmbedAhead:
    """Vectors of chunk texts, computed between pages. Each `feed` embeds at most one batch, so the
    page reader that calls it is back within a batch's time to send the next page."""

    def __init__(
        self,
        split: Callable[[str], list[str]],
        embed: Callable[[list[str]], list[list[float]]],
        batch: int,
    ) -> None:
        self._split, self._embed, self._batch = split, embed, batch
        self._vectors: dict[str, list[float]] = {}
        self._todo: list[str] = []
        self._split_at = 0

    def feed(self, text_so_far: str) -> None:
        """Embed up to one batch of the settled chunks of `text_so_far`."""
        if len(text_so_far) >= self._split_at * GROWTH:
            self._split_at = len(text_so_far)
            settled = self._split(text_so_far)[:-TAIL_CHUNKS]
            self._todo = [chunk for chunk in dict.fromkeys(settled) if chunk not in self._vectors]
        batch, self._todo = self._todo[: self._batch], self._todo[self._batch :]
        if batch:
            self._vectors.update(zip(batch, self._embed(batch), strict=True))

    def vector(self, chunk: str) -> list[float] | None:
        """The vector embedded ahead for exactly this chunk text, if any."""
        return self._vectors.get(chunk)

    def __len__(self) -> int:
        return len(self._vectors)
