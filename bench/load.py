"""Load as a team makes it: open-loop arrivals of a team's mix at fixed rates, until a p99 goal breaks.

The mix, in shares of its arrivals: a search (20 %), a document (25 %), the list of documents
(15 %), a cached summary (15 %), a conversation with its messages (15 %), the health (10 %); asks
come beside it at a low rate of their own (`load_ask_rate`), the same at every rate. The arrivals
are Poisson and each latency runs from the moment its request was due (bench/open_loop.py: no
coordinated omission). Goals, p99 of every request of a route (one not answered 2xx counts as
infinitely slow): cheap reads ≤ 200 ms, search ≤ 500 ms; asks have none (reported).

1. **CPU cost per route.** A fixed batch of one route's requests, evenly spaced at a low rate; the
   service's process tree (llama.cpp server, workers and children included, and on PostgreSQL the
   server's backends for its database) is read from /proc before and after, less its idle CPU over
   the same time, divided by the count. The **CPU limit** is the cores ÷ the mix-weighted CPU
   seconds of one mix request: the rate at which the cores would be busy with the mix alone.
2. **Capacity.** Rates doubled from `load_start_rate` until a goal breaks (halved when the first
   already breaks), then bisected until the bracket is within `load_resolution` of its low end or
   `load_steps` rates were tried: the capacity is the highest rate at which every p99 goal held.
   Goal: capacity ≥ 0.7 × the CPU limit — what is left is queueing and the generator's own cost.
3. **Goodput under overload.** The mix at twice the capacity: the service should shed the excess
   with 429/503 and `Retry-After` (counted with timeouts and every other status), the requests it
   admits keep their p99 goals, and at least 0.8 × capacity is answered within its goal.

Variants (`--load-variants`): `default` is the benchmark's own service; `postgres` a service on
PostgreSQL + Redis (fresh database, flushed Redis, as bench/scaleout.py); `workers2` one run as
`serve --workers 2`, which needs a Qdrant server (`DOCASSIST_BENCH_QDRANT`; none runs on these
machines, so it is reported as skipped without one). The others start their search at the default's
capacity and try `load_variant_steps` rates. Both p99 tables (by rate, and at twice the capacity)
go to the report for each variant.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from docassist.bench.core import LOAD_VARIANTS, Context, Result, ingest, summarize
from docassist.bench.corpus import DocFactory, xquad_questions
from docassist.bench.load_report import Measured, report_variant
from docassist.bench.open_loop import Made, Route, Run, play, schedule, tree_cpu_s
from docassist.bench.scaleout import POSTGRES, REDIS
from docassist.bench.service import Service, fresh_postgres_database, fresh_redis, start_service

CHEAP_MS, SEARCH_MS = 200.0, 500.0
COST_RATE = 5.0  # requests/s while a route's CPU cost is measured: low enough not to queue
ASK_COST_RATE = 1.0  # the same for asks (about half a CPU second each on the embedded default), a third as many
ASK_TIMEOUT_S = 30.0  # an answer takes seconds: the run's deadline is for the mix
MIN_RATE = 0.5  # the search stops halving here
PAUSE_S = 2.0  # between two runs: what a run left behind finishes
QDRANT = os.environ.get("DOCASSIST_BENCH_QDRANT", "")  # a Qdrant server for `serve --workers 2`
NAMES = {"default": "", "postgres": "PostgreSQL + Redis", "workers2": "serve --workers 2"}


@dataclass
class Team:
    """The space a team works in: its documents, one with a cached summary, one conversation."""

    space: str
    docs: list[str]
    conversation: str
    questions: list[str]


def routes(team: Team) -> tuple[list[Route], Route]:
    """The mix and the ask, each request made in the team's space."""
    space = {"space_id": team.space}

    def search(rng: random.Random) -> Made:
        return "POST", "/search", {"json": {"q": rng.choice(team.questions), **space}}

    def document(rng: random.Random) -> Made:
        return "GET", f"/documents/{rng.choice(team.docs)}", {"params": space}

    def listing(_: random.Random) -> Made:
        return "GET", "/documents", {"params": space}

    def summary(_: random.Random) -> Made:
        return "POST", "/summarize", {"json": {"doc_id": team.docs[0], **space}}

    def conversation(_: random.Random) -> Made:
        return "GET", f"/conversations/{team.conversation}", {"params": space}

    def health(_: random.Random) -> Made:
        return "GET", "/health", {}

    def ask(rng: random.Random) -> Made:
        return "POST", "/ask", {"json": {"q": rng.choice(team.questions), **space}}

    mix = [
        Route("POST /search", 0.20, SEARCH_MS, search),
        Route("GET /documents/{id}", 0.25, CHEAP_MS, document),
        Route("GET /documents", 0.15, CHEAP_MS, listing),
        Route("POST /summarize (cached)", 0.15, CHEAP_MS, summary),
        Route("GET /conversations/{id}", 0.15, CHEAP_MS, conversation),
        Route("GET /health", 0.10, CHEAP_MS, health),
    ]
    return mix, Route("POST /ask", 0.0, None, ask, ASK_TIMEOUT_S)


def prepare(http: httpx.Client, space: str, docs: int) -> Team:
    """The team's documents, the first one's summary cached, and a conversation: a question and its answer."""
    factory = DocFactory(seed=11)
    ids = [ingest(http, space, *factory.next(2))["doc_id"] for _ in range(docs)]
    summarize(http, space, ids[0], force=False)
    questions = [*xquad_questions("en")[:60], *xquad_questions("ru")[:60]]
    r = http.post("/conversations", json={"space_id": space})
    r.raise_for_status()
    conversation = r.json()["conversation_id"]
    turn = http.post(f"/conversations/{conversation}/messages", json={"q": questions[0], "space_id": space})
    turn.raise_for_status()
    return Team(space, ids, conversation, questions)


# ---------------------------------------------------------------- the services
@contextlib.contextmanager
def variant_service(ctx: Context, variant: str) -> Iterator[tuple[Service | None, Callable[[], list[int]], str]]:
    """(service or None when it cannot run here, the pids whose CPU is its cost, why not)."""
    if variant == "default":
        yield ctx.service, lambda: [ctx.service.pid], ""
        return
    shared = {
        "LLAMA_SERVER_URL": ctx.service.llama_url,
        "LLAMA_SERVER_API_KEY": ctx.service.llama_key,
        **dict(ctx.sizes.service_env),
    }
    if variant == "workers2":
        if not QDRANT:
            yield None, list, "`serve --workers 2` needs a Qdrant server: set DOCASSIST_BENCH_QDRANT to its URL"
            return
        service = start_service(ctx.workdir / "load-workers2", options=("--workers", "2"), QDRANT_URL=QDRANT, **shared)
        try:
            yield service, lambda: [service.pid], ""
        finally:
            service.stop()
        return
    with fresh_postgres_database(POSTGRES, "docassist_bench_load") as database, fresh_redis(REDIS) as redis_url:
        service = start_service(ctx.workdir / "load-postgres", DATABASE_URL=database, REDIS_URL=redis_url, **shared)
        try:
            yield service, lambda: [service.pid, *postgres_backends(database)], ""
        finally:
            service.stop()


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving `database` now: their CPU is the service's too."""
    import psycopg

    name = database.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(pid) for (pid,) in rows]


# ---------------------------------------------------------------- the measurements
class Bench:
    """One variant's runs against one service."""

    def __init__(self, ctx: Context, service: Service, pids: Callable[[], list[int]], measured: Measured) -> None:
        self.ctx, self.service, self.pids, self.m = ctx, service, pids, measured
        self.seed = 0

    def cpu(self) -> float:
        return tree_cpu_s(self.pids())

    def play(self, due: list[tuple[float, Route]], rate: float, seconds: float, pause_s: float | None = None) -> Run:
        self.seed += 1
        run = play(self.service.url, due, rate, seconds, self.ctx.sizes.load_timeout_s, self.cpu, self.seed)
        time.sleep(min(PAUSE_S, seconds / 3) if pause_s is None else pause_s)
        return run

    def at(self, rate: float, seconds: float) -> Run:
        """The mix at `rate` for `seconds`, asks beside it."""
        own = [(self.m.ask, self.m.ask_rate)]
        self.seed += 1
        return self.play(schedule(self.m.mix, rate, seconds, self.seed, own), rate, seconds)

    def warm_up(self) -> None:
        """One request of each route, then a little of the mix, not counted: a route's first call
        loads what it needs (an ask's first costs seconds more than the next)."""
        with self.service.client() as http:
            for route in self.m.routes:
                method, path, kwargs = route.request(random.Random(0))
                http.request(method, path, **kwargs).raise_for_status()
        self.at(self.ctx.sizes.load_start_rate / 2, min(2.0, self.ctx.sizes.load_step_s))

    def costs(self) -> None:
        """Each route's CPU milliseconds per request, less the service's idle CPU meanwhile."""
        n = self.ctx.sizes.load_cost_requests
        idle_s = max(2.0, n / COST_RATE)
        before, t0 = self.cpu(), time.perf_counter()
        time.sleep(idle_s)
        idle_per_s = (self.cpu() - before) / (time.perf_counter() - t0)
        for route in [*self.m.mix, self.m.ask]:
            count, rate = (n, COST_RATE) if route.weight else (max(2, n // 3), ASK_COST_RATE)
            run = self.play([(i / rate, route) for i in range(count)], rate, count / rate, pause_s=0.2)
            busy = run.service_cpu_s - idle_per_s * run.wall_s
            self.m.cost_ms[route.name] = max(0.0, busy / count * 1000)
        self.m.idle_cpu_ms_per_s = idle_per_s * 1000

    def search(self, start: float, steps: int, resolution: float) -> None:
        """Double (or halve) from `start` until the goals break (or hold), then bisect."""
        good: float | None = None
        bad: float | None = None
        rate = start
        while len(self.m.runs) < steps:
            run = self.at(rate, self.ctx.sizes.load_step_s)
            self.m.runs.append(run)
            held = run.holds(self.m.mix)
            self.ctx.log(f"{self.m.variant}: {rate:g}/s {'held' if held else 'broke'} ({dict(run.kinds())})")
            if held:
                good = max(good or 0.0, rate)
            else:
                bad = min(bad or math.inf, rate)
            if good is None:
                rate = round(rate / 2, 2)
                if rate < MIN_RATE:
                    break
            elif bad is None:
                rate = rate * 2
            elif (bad - good) / good <= resolution:
                break
            else:
                rate = round((good + bad) / 2, 1)
        self.m.capacity, self.m.broke_at = good, bad


def measure(
    ctx: Context, variant: str, service: Service, pids: Callable[[], list[int]], start: float, steps: int
) -> Measured:
    sizes = ctx.sizes
    space = "bench_load" if variant == "default" else f"bench_load_{variant}_{uuid.uuid4().hex[:6]}"
    ctx.log(f"{variant}: {sizes.load_docs} documents, a cached summary and a conversation in {space}")
    with service.client() as http:
        team = prepare(http, space, sizes.load_docs)
    mix, ask = routes(team)
    cores = len(os.sched_getaffinity(0))
    bench = Bench(ctx, service, pids, Measured(variant, cores, mix, ask, sizes.load_ask_rate))
    bench.warm_up()
    ctx.log(f"{variant}: CPU cost of each route, {sizes.load_cost_requests} requests at {COST_RATE:g}/s")
    bench.costs()
    ctx.log(f"{variant}: capacity search from {start:g}/s, {steps} rates at most, {sizes.load_step_s:g}s each")
    bench.search(start, steps, sizes.load_resolution)
    if bench.m.capacity:
        rate = 2 * bench.m.capacity
        ctx.log(f"{variant}: {rate:g}/s (twice the capacity) for {sizes.load_overload_s:g}s")
        bench.m.overload = bench.at(rate, sizes.load_overload_s)
    return bench.m


def run(ctx: Context) -> Result:
    res = Result("load", "Load: a team's mix, open loop")
    start, steps = ctx.sizes.load_start_rate, ctx.sizes.load_steps
    for variant in [v for v in LOAD_VARIANTS if v in ctx.sizes.load_variants]:
        try:
            with variant_service(ctx, variant) as (service, pids, why_not):
                if service is None:
                    res.notes.append(f"{variant}: not run — {why_not}")
                    continue
                m = measure(ctx, variant, service, pids, start, steps)
        except Exception as exc:
            if variant == "default":
                raise
            traceback.print_exc()  # the default's figures stand; this variant is reported as failed
            res.notes.append(f"{variant}: failed — {type(exc).__name__}: {exc}")
            continue
        report_variant(res, m, NAMES[variant], ctx.sizes)
        if variant == "default" and m.capacity:  # the others search near it, with fewer rates
            start, steps = m.capacity, ctx.sizes.load_variant_steps
    return res
