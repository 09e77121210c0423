"""Who a session cookie or a personal token is, remembered for a second by this process.

A request on a session otherwise reads the session and its person from the database before any
route runs: about 0.7 ms on SQLite, a third of a small request (bench/sign_in.py). Remembered
for `TTL_S`, a burst of a page's requests costs one read. What ends a session or a token —
sign-out, a revoked token, a person gone or refused at a refresh — removes it here at once, and,
with Redis, in every process of the deployment (`revocations.py`); a process that cannot hear the
others (several backends without Redis, or Redis unreachable) does not remember at all.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
TTL_S = 1.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Held(Generic[T]):
    value: T
    person_id: str
    until: float


class CallerCache(Generic[T]):
    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self.enabled = True
        self._held: OrderedDict[str, _Held[T]] = OrderedDict()

    def get(self, key: str) -> T | None:
        held = self._held.get(key)
        if held is None or not self.enabled:
            return None
        if time.monotonic() >= held.until:
            del self._held[key]
            return None
        return held.value

    def put(self, key: str, person_id: str, value: T) -> None:
        if not self.enabled:
            return
        self._held[key] = _Held(value, person_id, time.monotonic() + self.ttl_s)
        self._held.move_to_end(key)
        while len(self._held) > self.max_entries:
            self._held.popitem(last=False)

    def forget(self, key: str) -> None:
        self._held.pop(key, None)

    def forget_person(self, person_id: str) -> None:
        for key in [k for k, held in self._held.items() if held.person_id == person_id]:
            del self._held[key]

    def clear(self) -> None:
        self._held.clear()
