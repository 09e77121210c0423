"""Where the runs of a summary meet: which process runs a key, who follows it, when it stops.

`SummaryService` asks a `FlightBoard` and never which one it has: `LocalFlightBoard` when the
process is alone (its flights are the only runs there are), `SharedFlightBoard`
(`shared_board.py`) when the processes of a deployment share a Redis — the pattern of
`llm.scheduling.PrioritySemaphore` and `llm.shared_slots.SharedSlots`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.runs.flights import Flight, RemoteFlight


class OwnerGone(Exception):
    """The process running a flight stopped renewing its lease before the run ended."""


@dataclass(frozen=True)
class Owned:
    """This process runs the key's summary."""

    run: str | None = None  # its id on a shared board
    contested: bool = False  # other processes claim keys too: one may have cached it since the lookup


@dataclass(frozen=True)
class Elsewhere:
    """Another process runs the key's summary: `run` names it on the board."""

    run: str


class FlightBoard(Protocol):
    async def claim(self, key: str) -> Owned | Elsewhere:
        """Who runs the summary of `key` from now on."""
        ...

    async def release(self, key: str, run: str | None) -> None:
        """Give up an `Owned` claim that will not run (its summary was cached meanwhile)."""
        ...

    def launch(self, flight: Flight) -> None:
        """Before the flight's first event: make its events reach its followers elsewhere."""
        ...

    async def watch(self, flight: Flight, document_exists: Callable[[], Awaitable[bool]]) -> None:
        """While the flight runs: keep its claim, and cancel it when nobody wants it any more."""
        ...

    def following(self, flight: Flight | RemoteFlight) -> contextlib.AbstractAsyncContextManager[None]:
        """Count as a follower of the flight while the block runs."""
        ...

    def events(self, flight: RemoteFlight) -> AsyncIterator[StreamEvent]:
        """Every event of a run owned elsewhere, from its first; `OwnerGone` if its owner stops."""
        ...


class LocalFlightBoard:
    """One process alone: its flights are every run; the last follower of an unpinned flight
    leaving cancels it at once (a client that disconnects stops its LLM work)."""

    async def claim(self, key: str) -> Owned | Elsewhere:
        """Always this process's; it never suspends, so no other request of the key starts
        between the service's look at its flights and the flight it then adds."""
        return Owned()

    async def release(self, key: str, run: str | None) -> None:
        return None

    def launch(self, flight: Flight) -> None:
        return None

    async def watch(self, flight: Flight, document_exists: Callable[[], Awaitable[bool]]) -> None:
        return None  # a deleted document's runs are cancelled by `SummaryService.cancel_document`

    def following(self, flight: Flight | RemoteFlight) -> contextlib.AbstractAsyncContextManager[None]:
        assert isinstance(flight, Flight), "a local board hands out no runs of other processes"
        return counted(flight)

    def events(self, flight: RemoteFlight) -> AsyncIterator[StreamEvent]:
        raise AssertionError("a local board hands out no runs of other processes")


@contextlib.asynccontextmanager
async def counted(flight: Flight) -> AsyncIterator[None]:
    """Follow a flight of this process: the last follower of an unpinned one leaving cancels it."""
    flight.followers += 1
    try:
        yield
    finally:
        flight.followers -= 1
        if flight.followers == 0 and not flight.pinned:
            flight.cancel()
