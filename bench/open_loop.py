"""An open-loop load generator: Poisson arrivals at a fixed rate, each latency counted from the
moment its request was due.

A closed loop (N clients, each sending its next request when the last is answered) slows down
with the service it measures: while the service stalls, its clients stop sending, and the stall
shows as one slow request per client instead of in every request that should have arrived
meanwhile (coordinated omission). Here the schedule is drawn first — exponential gaps at the mix's
rate, each arrival's route drawn by its weight, and routes with a rate of their own (asks) on
schedules of their own — and one event loop sends each request at its due time through
`httpx.AsyncClient`s that together open as many connections as are in flight (up to twice the
service's `MAX_CONNECTIONS`, so the service's own cap is what refuses), never waiting for an answer
before the next send. A request's latency runs from its due time to its answer, so a send that the
generator itself made late (it shares the cores with the service) still counts from when it was
due; how late the sends went out is reported beside. A request unanswered `timeout_s` after it was
due is cancelled and counted as timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from docassist.bench.service import child_pids
from docassist.bench.stats import percentile, summary

TIMEOUT, FAILED = -1, -2  # an Outcome's status when no answer came: past the deadline, or the connection failed
CONNECTIONS = 1024  # the client's most at once: twice the service's MAX_CONNECTIONS default
# httpx's pool looks through all its connections and waiting requests at every request and answer: with
# 300 in flight in one client that measured 17 CPU ms a request and seconds of lag, so requests are dealt
# out in turn to clients of a few connections each
SHARDS = 32
_TLS = ssl.create_default_context()  # shared: a context of its own costs each client 20 CPU ms (the service is http)

Made = tuple[str, str, dict[str, Any]]  # a request: method, path, httpx keyword arguments
Request = Callable[[random.Random], Made]


@dataclass(frozen=True)
class Route:
    """One kind of request of the mix: its share of the mix's arrivals (0: it comes at a rate of its
    own), its p99 goal, how to make one, and its own deadline when the run's is too short for it."""

    name: str
    weight: float
    goal_ms: float | None
    request: Request
    timeout_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    route: str
    due_s: float  # from the start of the schedule
    lag_ms: float  # how long after its due time the generator sent it
    ms: float  # from its due time to its answer (or to the deadline)
    status: int  # HTTP status, TIMEOUT or FAILED
    retry_after: bool

    @property
    def served(self) -> bool:
        return 200 <= self.status < 300

    @property
    def kind(self) -> str:
        """What happened to it, as the tables count: "200", "429 Retry-After", "503", "timeout", …"""
        if self.status == TIMEOUT:
            return "timeout"
        if self.status == FAILED:
            return "connection failed"
        return f"{self.status} Retry-After" if self.retry_after else str(self.status)


def schedule(
    mix: Sequence[Route], rate: float, seconds: float, seed: int, own_rates: Sequence[tuple[Route, float]] = ()
) -> list[tuple[float, Route]]:
    """(due second, route) of every request of a run, in due order: Poisson arrivals at `rate` whose
    routes are drawn by weight, plus each (route, rate) of `own_rates` as a Poisson stream of its own."""
    rng = random.Random(seed)
    weights = [r.weight for r in mix]
    due: list[tuple[float, Route]] = []
    t = rng.expovariate(rate)
    while t < seconds:
        due.append((t, rng.choices(mix, weights)[0]))
        t += rng.expovariate(rate)
    for route, own in own_rates:
        t = rng.expovariate(own)
        while t < seconds:
            due.append((t, route))
            t += rng.expovariate(own)
    return sorted(due, key=lambda d: d[0])


async def _one(http: httpx.AsyncClient, route: Route, rng: random.Random, due: float, timeout_s: float) -> Outcome:
    loop = asyncio.get_running_loop()
    lag = loop.time() - due
    method, path, kwargs = route.request(rng)
    status, retry_after = TIMEOUT, False
    try:
        async with asyncio.timeout_at(due + (route.timeout_s or timeout_s)):
            r = await http.request(method, path, **kwargs)
            status, retry_after = r.status_code, "retry-after" in r.headers
    except TimeoutError:
        pass
    except httpx.HTTPError:
        status = FAILED
    return Outcome(route.name, 0.0, lag * 1000, (loop.time() - due) * 1000, status, retry_after)


async def _drive(url: str, due: list[tuple[float, Route]], timeout_s: float, seed: int) -> list[Outcome]:
    rng = random.Random(seed)
    per_shard = CONNECTIONS // SHARDS
    limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
    # the per-request deadline is `timeout_s` from the due time (asyncio.timeout_at); httpx's own only backs it up
    longest = max([timeout_s, *(route.timeout_s or 0 for _, route in due)])
    async with contextlib.AsyncExitStack() as stack:
        shards = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=longest + 5, verify=_TLS)
            )
            for _ in range(SHARDS)
        ]
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.05
        tasks: list[asyncio.Task[Outcome]] = []
        for i, (at, route) in enumerate(due):
            wait = t0 + at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(_one(shards[i % SHARDS], route, rng, t0 + at, timeout_s)))
        done = await asyncio.gather(*tasks)
    return [Outcome(o.route, at, o.lag_ms, o.ms, o.status, o.retry_after) for o, (at, _) in zip(done, due, strict=True)]


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (uvicorn's standard extra brings it): less of the
    shared cores goes to the generator."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def tree_cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user and system) of these processes and all their descendants, with the
    children each has reaped: the service's whole cost, its llama.cpp server and workers included."""
    ticks, todo, seen = 0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        todo += child_pids(pid)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One schedule played against a service: every outcome, and the CPU both sides spent."""

    rate: float  # the mix's arrivals per second (the routes with rates of their own come on top)
    seconds: float
    outcomes: list[Outcome]
    service_cpu_s: float
    client_cpu_s: float
    wall_s: float

    def of(self, route: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.route == route]

    def p99_ms(self, route: str, admitted: bool = False) -> float:
        """p99 latency of the route's requests; a request not served counts as infinitely slow, or,
        with `admitted`, is left out (what the service let in)."""
        got = self.of(route)
        values = [o.ms if o.served else math.inf for o in got if o.served or not admitted]
        return percentile(values, 99)

    def holds(self, routes: Sequence[Route]) -> bool:
        """Every goal route's p99 within its goal, every request of it served."""
        return all(self.p99_ms(r.name) <= r.goal_ms for r in routes if r.goal_ms is not None and self.of(r.name))

    def kinds(self, route: str | None = None) -> Counter[str]:
        return Counter(o.kind for o in self.outcomes if route is None or o.route == route)

    def served_per_s(self, routes: Sequence[Route] | None = None, within_goal: bool = False) -> float:
        """Answers (2xx) per second of the schedule, of `routes` (default all); `within_goal`: only
        those answered within their route's p99 goal (goodput)."""
        goals = {r.name: r.goal_ms for r in routes} if routes is not None else None
        n = 0
        for o in self.outcomes:
            if not o.served or (goals is not None and o.route not in goals):
                continue
            goal = goals.get(o.route) if goals is not None else None
            n += not within_goal or goal is None or o.ms <= goal
        return n / self.seconds

    def lag_ms(self) -> dict[str, float]:
        return summary([o.lag_ms for o in self.outcomes], 1)


def play(
    url: str,
    due: list[tuple[float, Route]],
    rate: float,
    seconds: float,
    timeout_s: float,
    cpu_of: Callable[[], float],
    seed: int = 0,
) -> Run:
    """Send `due` (a `schedule`) to the service at `url` on an event loop of its own; `cpu_of` reads
    the service's CPU seconds so far, before and after."""
    cpu0, client0, t0 = cpu_of(), time.process_time(), time.perf_counter()
    loop = new_loop()
    try:
        outcomes = loop.run_until_complete(_drive(url, due, timeout_s, seed))
    finally:
        loop.close()
    wall = time.perf_counter() - t0
    return Run(rate, seconds, outcomes, cpu_of() - cpu0, time.process_time() - client0, wall)


def p99_text(value: float) -> str:
    """A table cell: milliseconds, or "—" when some request was not served (p99 unbounded)."""
    return "—" if math.isinf(value) or math.isnan(value) else f"{value:,.0f}"
