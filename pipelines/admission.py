"""Admission: per-key concurrency limits, so one caller cannot fill the query lane or the LLM's
slots, and a bound on the requests running at once, so a process past its capacity sheds the
excess instead of answering everything late.

Searches queue on one embedding engine and answers on the LLM's few slots; a caller past its
limit (`SEARCH_PER_KEY`, `ANSWERS_PER_KEY`) is refused at once with 429 and `Retry-After`, so
other callers' requests keep their place. The caller is its API key. Without keys there is
nobody to tell apart — behind a proxy every client has the same address — so nothing is
limited per caller (the upload queue and the LLM's slots still bound the work).
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from docassist.pipelines.errors import TooBusy


@dataclass
class Permit:
    """A held place; `release` is idempotent, so every way out of a request may call it."""

    limit: KeyLimit
    holder: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limit.held[self.holder] -= 1
            if self.limit.held[self.holder] <= 0:
                del self.limit.held[self.holder]

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


@dataclass
class KeyLimit:
    """At most `per_key` requests of one kind in flight per caller. Used on the event loop's
    thread only, so the counts need no lock."""

    what: str
    setting: str
    per_key: int
    retry_after_s: int
    held: Counter[str] = field(default_factory=Counter)

    def admit(self, holder: str) -> Permit:
        """`holder` "" (no API keys) is never refused."""
        if holder and self.held[holder] >= self.per_key:
            raise TooBusy(
                f"this key already has {self.held[holder]} {self.what} in flight, the most {self.setting} "
                f"allows ({self.per_key}); retry in {self.retry_after_s}s",
                retry_after_s=self.retry_after_s,
                limit=self.per_key,
            )
        self.held[holder] += 1
        return Permit(self, holder)


RECENT_S = 2.0  # a request still running after this waits on a bounded resource, not on the cores


@dataclass
class InFlight:
    """At most `limit` requests started in the last `RECENT_S` seconds and not ended, and at most
    half of them one caller's: past either, the next one is shed at once (503 `busy`, `Retry-After`)
    instead of queueing for the cores.

    Past its capacity a single process served everything it accepted, ever later: at twice the
    rate it could hold, every request it admitted took seconds. Bounding the requests running at
    once bounds how long each one waits, and a refusal costs a fraction of an answer. A request
    that has run for `RECENT_S` (a stream, an answer waiting for the LLM's slot) no longer counts:
    its work is bounded where it waits. While other callers are about (asked in the last
    `RECENT_S`), one caller (its credential: an API key, a token, a session) takes half the places
    at most, so a flood from one key leaves the others room; alone, it may take them all. Without
    credentials nobody can be told apart (`holder` ""), and only the whole bound applies. Used on
    the event loop's thread only."""

    limit: int
    started: OrderedDict[int, tuple[float, str]] = field(default_factory=OrderedDict)
    held: Counter[str] = field(default_factory=Counter)
    seen: OrderedDict[str, float] = field(default_factory=OrderedDict)  # callers by when they last asked
    shed: int = 0
    _tickets: int = 0
    _reported: tuple[float, int] = (float("-inf"), 0)  # when shedding was last reported, and the count then

    @property
    def share(self) -> int:
        """The places one caller may hold while others are about."""
        return max(1, self.limit // 2)

    def admit(self, holder: str = "", now: float | None = None) -> int | None:
        """A ticket for `done`, or None when the request is to be shed."""
        now = time.monotonic() if now is None else now
        while self.started and now - next(iter(self.started.values()))[0] >= RECENT_S:
            self._forget(self.started.popitem(last=False)[1][1])
        crowded = False
        if holder:
            self.seen[holder] = now
            self.seen.move_to_end(holder)
            while now - next(iter(self.seen.values())) >= RECENT_S:
                self.seen.popitem(last=False)
            crowded = len(self.seen) > 1 and self.held[holder] >= self.share
        if len(self.started) >= self.limit or crowded:
            self.shed += 1
            return None
        self._tickets += 1
        self.started[self._tickets] = (now, holder)
        self.held[holder] += 1
        return self._tickets

    def done(self, ticket: int) -> None:
        entry = self.started.pop(ticket, None)
        if entry is not None:
            self._forget(entry[1])

    def _forget(self, holder: str) -> None:
        self.held[holder] -= 1
        if self.held[holder] <= 0:
            del self.held[holder]

    def unreported(self, now: float | None = None) -> int | None:
        """How many were shed since the last report, once a second at most (None in between)."""
        now = time.monotonic() if now is None else now
        if now - self._reported[0] < 1.0:
            return None
        count, self._reported = self.shed - self._reported[1], (now, self.shed)
        return count
