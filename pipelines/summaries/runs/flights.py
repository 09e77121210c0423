"""Single-flight runs: one computation of a summary that every request for it follows.

A flight keeps every event of its run, so a follower that joins late still sees `start` and
every `processing` step before the live ones. A flight nobody follows any more is cancelled
(a client that disconnects stops its LLM work), unless a background job pins it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from docassist.pipelines.streams import StreamEvent


@dataclass
class Flight:
    """A run this process owns (or, without Redis, the only run there is)."""

    key: str
    space_id: str
    doc_id: str
    language: str = ""
    run: str | None = None  # with shared flights: the run's id in Redis
    events: list[StreamEvent] = field(default_factory=list)
    task: asyncio.Task | None = None
    followers: int = 0
    pinned: bool = False
    done: bool = False
    outbox: asyncio.Queue[StreamEvent] | None = None  # with shared flights: events still to publish
    publisher: asyncio.Task | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def emit(self, ev: StreamEvent) -> None:
        self.events.append(ev)
        if self.outbox is not None:
            self.outbox.put_nowait(ev)
        self._changed.set()

    def finish(self) -> None:
        self.done = True
        self._changed.set()

    async def follow(self) -> AsyncIterator[StreamEvent]:
        """Every event of the run so far, then each new one, until it ends."""
        index = 0
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.done:
                return
            self._changed.clear()
            if index < len(self.events) or self.done:
                continue
            await self._changed.wait()

    def cancel(self) -> None:
        if self.task and not self.done:
            self.task.cancel()


@dataclass
class RemoteFlight:
    """A run that another process owns (shared flights through Redis): followed through its events
    stream; taken over if its owner dies."""

    key: str
    space_id: str
    doc_id: str
    language: str
    run: str
    pinned: bool = False
