"""Who gets an endpoint next, and how long the work ahead will take.

`PrioritySemaphore` bounds concurrent calls to an endpoint like a semaphore, but lets
interactive requests overtake background jobs waiting for the same slot: a 50-call
pre-computed summary must not make a user's question wait behind it. Background work marks
itself with `background()`.

`Throughput` predicts a call's duration from measured throughput, so progress events carry
an ETA that learns from this machine and this server instead of a constant.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

INTERACTIVE, BACKGROUND = 0, 10
_priority: ContextVar[int] = ContextVar("llm_priority", default=INTERACTIVE)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """LLM calls made inside yield their endpoint to interactive requests."""
    token = _priority.set(BACKGROUND)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> int:
    """The priority of LLM calls made here: `INTERACTIVE`, or `BACKGROUND` inside `background()`."""
    return _priority.get()


class PrioritySemaphore:
    def __init__(self, value: int) -> None:
        self._value = value
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for *_, f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self._value > 0 and not self.waiting:
            self._value -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (_priority.get(), next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # we were handed the slot as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            *_, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self._value += 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


@dataclass
class Throughput:
    prompt_tps: float
    gen_tps: float
    scale: float = 1.0
    avg_output: float = 120.0
    alpha: float = 0.3

    @classmethod
    def seeded(cls, rates: tuple[float, float]) -> Throughput:
        """Before anything is measured: the backend's (prompt, generated) tokens/s."""
        return cls(prompt_tps=rates[0], gen_tps=rates[1])

    def predict(self, prompt_tokens: int, output_tokens: float | None = None) -> float:
        out = self.avg_output if output_tokens is None else output_tokens
        return (prompt_tokens / self.prompt_tps + out / self.gen_tps) * self.scale

    def observe(self, prompt_tokens: int, output_tokens: int, seconds: float) -> None:
        predicted = (prompt_tokens / self.prompt_tps + output_tokens / self.gen_tps) or 1e-6
        ratio = max(0.05, min(20.0, seconds / predicted))
        self.scale += self.alpha * (ratio - self.scale)
        self.avg_output += self.alpha * (output_tokens - self.avg_output)
