"""The load benchmark's figures and its two p99 tables (by rate; at twice the capacity), per variant."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from docassist.bench.core import Result, Sizes, Table
from docassist.bench.open_loop import Route, Run, p99_text
from docassist.bench.stats import percentile, ratio, summary


@dataclass
class Measured:
    """What one variant measured: its figures and tables are made from it."""

    variant: str
    cores: int
    mix: list[Route]
    ask: Route
    ask_rate: float
    cost_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per request, by route
    idle_cpu_ms_per_s: float = math.nan  # the service's CPU while no request comes
    runs: list[Run] = field(default_factory=list)  # the capacity search's, in the order run
    capacity: float | None = None
    broke_at: float | None = None
    overload: Run | None = None

    @property
    def mix_cost_ms(self) -> float:
        """CPU ms of one mix request: each route's cost weighted by its share."""
        return sum(r.weight * self.cost_ms[r.name] for r in self.mix) / sum(r.weight for r in self.mix)

    @property
    def cpu_limit(self) -> float:
        """cores ÷ the CPU seconds of one mix request: the rate that keeps every core busy."""
        return self.cores / (self.mix_cost_ms / 1000) if self.mix_cost_ms > 0 else math.inf

    @property
    def client_cost_ms(self) -> float:
        """The generator's own CPU ms per request, over the capacity search's runs."""
        n = sum(len(r.outcomes) for r in self.runs)
        return sum(r.client_cpu_s for r in self.runs) / n * 1000 if n else math.nan

    @property
    def cpu_limit_left(self) -> float:
        """The same with what the cores leave the mix: less the asks' CPU and the idle service's, and
        counting the generator's own CPU per request (it runs on the same cores)."""
        asks = self.ask_rate * self.cost_ms.get(self.ask.name, 0.0) / 1000
        left = self.cores - asks - self.idle_cpu_ms_per_s / 1000
        per_request = self.mix_cost_ms + self.client_cost_ms
        return left / (per_request / 1000) if per_request > 0 else math.inf

    @property
    def routes(self) -> list[Route]:
        return [*self.mix, self.ask]


def _mark(value: float, goal: float | None) -> str:
    if goal is None:
        return p99_text(value)
    return f"{p99_text(value)} {'✅' if value <= goal else '❌'}"


def _cores(cpu_s: float, run: Run) -> str:
    return f"{cpu_s / run.wall_s:.2f}" if run.wall_s else "—"


def rate_table(m: Measured, suffix: str) -> Table:
    runs = sorted(m.runs, key=lambda r: r.rate)
    header = ["route", "share", "CPU ms/request", "p99 goal", *[f"{r.rate:g}/s" for r in runs]]
    rows = []
    for route in m.routes:
        share = f"{route.weight:.0%}" if route.weight else f"{m.ask_rate:g}/s"
        goal = f"≤ {route.goal_ms:g}" if route.goal_ms is not None else ""
        cells = []
        for run in runs:
            got = run.of(route.name)
            lost = sum(not o.served for o in got)
            cell = _mark(run.p99_ms(route.name), route.goal_ms) if got else "none sent"
            cells.append(f"{cell} ({lost} not served)" if lost else cell)
        rows.append([route.name, share, f"{m.cost_ms.get(route.name, math.nan):.1f}", goal, *cells])
    rows.append(["every goal held", "", "", "", *["yes" if r.holds(m.mix) else "no" for r in runs]])
    rows.append(["requests (answered 2xx per second)", "", "", "", *[_answered(r) for r in runs]])
    rows.append(["generator's send lag p99, ms", "", "", "", *[f"{r.lag_ms().get('p99', 0):,.0f}" for r in runs]])
    rows.append(["service CPU, cores busy", "", "", "", *[_cores(r.service_cpu_s, r) for r in runs]])
    rows.append(["generator CPU, cores busy", "", "", "", *[_cores(r.client_cpu_s, r) for r in runs]])
    return Table(f"p99 by rate, ms{suffix}", header, rows)


def _answered(run: Run) -> str:
    return f"{len(run.outcomes):,} ({run.served_per_s():.1f}/s)"


def overload_table(m: Measured, run: Run, suffix: str) -> Table:
    header = ["route", "p99 goal", "sent", "2xx", "429 Retry-After", "503 Retry-After", "other", "timed out"]
    header += ["admitted p50", "admitted p99"]
    rows = []
    for route in [*m.routes, None]:
        name = route.name if route else "all"
        got = run.of(name) if route else run.outcomes
        kinds = run.kinds(name if route else None)
        shed = {k: kinds.get(k, 0) for k in ("429 Retry-After", "503 Retry-After", "timeout")}
        served = [o.ms for o in got if o.served]
        other = len(got) - len(served) - sum(shed.values())
        goal = route.goal_ms if route else None
        p99 = percentile(served, 99)
        if not got:
            rows.append([name, f"≤ {goal:g}" if goal is not None else "", "0", *[""] * 7])
            continue
        rows.append([
            name, f"≤ {goal:g}" if goal is not None else "", str(len(got)), str(len(served)),
            str(shed["429 Retry-After"]), str(shed["503 Retry-After"]), str(other), str(shed["timeout"]),
            p99_text(percentile(served, 50)), _mark(p99, goal) if route else p99_text(p99),
        ])  # fmt: skip
    return Table(f"at twice the capacity, {run.rate:g}/s for {run.seconds:g}s{suffix}", header, rows)


def _search_context(m: Measured, sizes: Sizes) -> str:
    tried = ", ".join(f"{r.rate:g}/s {'✅' if r.holds(m.mix) else '❌'}" for r in m.runs)
    if m.broke_at is not None and m.capacity:
        bracket = f"broke at {m.broke_at:g}/s: within {ratio(m.broke_at - m.capacity, m.capacity, 2):.0%}"
    elif m.capacity:
        bracket = "no rate tried broke it: a lower bound"
    else:
        bracket = "no rate tried held"
    return (
        f"rates in order: {tried}; {bracket}; each {sizes.load_step_s:g}s of Poisson arrivals, "
        f"asks at {m.ask_rate:g}/s beside; p99 of all requests, one not answered 2xx counting as too slow"
    )


def _cost_context(m: Measured) -> str:
    costs = ", ".join(f"{r.name} {m.cost_ms[r.name]:.1f}" for r in m.routes)
    return (
        f"{m.cores} cores ÷ {m.mix_cost_ms:.2f} CPU ms per mix request; CPU ms per request: {costs}; "
        f"idle {m.idle_cpu_ms_per_s:.0f} CPU ms/s (subtracted from each); less the asks' and the idle "
        f"service's CPU, and counting the generator's own {m.client_cost_ms:.1f} CPU ms per request on the "
        f"same cores: {m.cpu_limit_left:.1f}/s"
    )


def _overload_figures(res: Result, m: Measured, run: Run, key: str, label: str) -> None:
    capacity = m.capacity or math.nan
    goodput = run.served_per_s(m.mix, within_goal=True)
    kinds = run.kinds()
    res.add(
        f"{key}overload_goodput_over_capacity",
        f"mix requests answered within their p99 goal per second at twice the capacity vs capacity{label}",
        ratio(goodput, capacity),
        baseline=f"capacity {capacity:g}/s",
        goal=(">=", 0.8),
        context=f"{goodput:.1f}/s within goal, {run.served_per_s(m.mix):.1f}/s answered 2xx, of "
        f"{run.rate:g}/s sent; {dict(kinds)}",
    )
    worst = max(
        (ratio(run.p99_ms(r.name, admitted=True), r.goal_ms) for r in m.mix if r.goal_ms and run.of(r.name)),
        default=math.nan,
    )
    res.add(
        f"{key}overload_admitted_p99_over_goal",
        f"p99 of the requests admitted (2xx) at twice the capacity, worst route vs its goal{label}",
        worst,
        goal=("<=", 1.0),
        context="; ".join(f"{r.name} {p99_text(run.p99_ms(r.name, admitted=True))} ms" for r in m.mix),
    )
    unshed = sum(n for k, n in kinds.items() if not (k.startswith("2") or k.endswith("Retry-After")))
    res.add(
        f"{key}overload_not_shed",
        f"requests at twice the capacity neither answered nor refused with Retry-After, of {len(run.outcomes):,}"
        f"{label}",
        unshed,
        unit="",
        goal=("<=", 0),
        context="timeouts, failed connections and refusals that do not say when to come back",
    )


def report_variant(res: Result, m: Measured, name: str, sizes: Sizes) -> None:
    """Figures (key prefix and label suffix name the variant), tables and data of one variant."""
    key = f"{m.variant}_" if m.variant != "default" else ""
    label, suffix = (f" ({name})", f" — {name}") if name else ("", "")
    capacity = m.capacity if m.capacity is not None else math.nan
    res.add(f"{key}capacity", f"capacity: the highest mix rate at which every p99 goal held{label}", capacity,
            "req/s", context=_search_context(m, sizes))  # fmt: skip
    res.add(f"{key}cpu_limit", f"CPU limit from each route's CPU cost{label}", round(m.cpu_limit, 1), "req/s",
            context=_cost_context(m))  # fmt: skip
    res.add(f"{key}capacity_over_cpu_limit", f"capacity vs the CPU limit{label}", ratio(capacity, m.cpu_limit),
            baseline=f"CPU limit {m.cpu_limit:.1f}/s", goal=(">=", 0.7))  # fmt: skip
    if m.overload is not None:
        _overload_figures(res, m, m.overload, key, label)
    res.tables.append(rate_table(m, suffix))
    if m.overload is not None:
        res.tables.append(overload_table(m, m.overload, suffix))
    res.data[m.variant] = {
        "capacity": m.capacity,
        "broke_at": m.broke_at,
        "cpu_limit": round(m.cpu_limit, 2),
        "cores": m.cores,
        "cpu_ms_per_request": {k: round(v, 2) for k, v in m.cost_ms.items()},
        "idle_cpu_ms_per_s": round(m.idle_cpu_ms_per_s, 1),
        "generator_cpu_ms_per_request": round(m.client_cost_ms, 2),
        "cpu_limit_left_to_the_mix": round(m.cpu_limit_left, 2),
        "shares": {r.name: r.weight for r in m.mix},
        "ask_rate": m.ask_rate,
        "runs": [_run_data(r, m) for r in m.runs],
        "overload": _run_data(m.overload, m) if m.overload is not None else None,
    }


def _run_data(run: Run, m: Measured) -> dict[str, object]:
    routes = {}
    for route in m.routes:
        got = run.of(route.name)
        p99 = run.p99_ms(route.name)
        routes[route.name] = {
            "statuses": dict(run.kinds(route.name)),
            "p99_ms": None if math.isinf(p99) or math.isnan(p99) else round(p99, 1),
            "admitted_ms": summary([o.ms for o in got if o.served], 1),
        }
    return {
        "rate": run.rate,
        "seconds": run.seconds,
        "held": run.holds(m.mix),
        "requests": len(run.outcomes),
        "answered_per_s": round(run.served_per_s(), 2),
        "within_goal_per_s": round(run.served_per_s(m.mix, within_goal=True), 2),
        "send_lag_ms": run.lag_ms(),
        "service_cpu_cores": round(run.service_cpu_s / run.wall_s, 3) if run.wall_s else None,
        "generator_cpu_cores": round(run.client_cpu_s / run.wall_s, 3) if run.wall_s else None,
        "wall_s": round(run.wall_s, 1),
        "routes": routes,
    }
