"""Per-key concurrency limits: one caller cannot fill the query lane or the LLM's slots.

Searches queue on one embedding engine and answers on the LLM's few slots; a caller past its
limit (`SEARCH_PER_KEY`, `ANSWERS_PER_KEY`) is refused at once with 429 and `Retry-After`, so
other callers' requests keep their place. The caller is its API key. Without keys there is
nobody to tell apart — behind a proxy every client has the same address — so nothing is
limited per caller (the upload queue and the LLM's slots still bound the work).
"""

from __future__ import annotations

from collections import Counter
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
