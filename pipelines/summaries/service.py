"""Summaries: a document's summary, asked for by space and id.

The document is looked up first (`NotFound` outside its space, before any response is sent);
the run itself — the cache, single flight, following a run — is `SummaryService`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from docassist.pipelines.documents.registry import DocumentRecord
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import SummaryComplete
from docassist.pipelines.summaries.runs.service import SummaryService


class Summaries:
    def __init__(self, find: Callable[[str, str], Awaitable[DocumentRecord]], runs: SummaryService) -> None:
        """`find`: a document by space and id, or `NotFound` (the library's lookup)."""
        self.find, self.runs = find, runs

    async def summarize(
        self, space_id: str, doc_id: str, language: str | None = None, force: bool = False
    ) -> SummaryComplete:
        """The summary's `complete` event once its run ends; its error raised."""
        record = await self.find(space_id, doc_id)
        return await self.runs.summarize(record, language, force)

    async def events(
        self, space_id: str, doc_id: str, language: str | None = None, force: bool = False
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[StreamEvent]]:
        """The events of the document's summary run, from `start` to `complete` or `error`. The
        document is looked up now (`NotFound` before any response is sent); leaving the events
        early cancels the run unless another request or a job still needs it."""
        record = await self.find(space_id, doc_id)
        flight = await self.runs.start(record, language, force)
        return self.runs.following(flight, record)
