"""Small statistics: percentiles, distribution summaries, ratios and a linear fit.

Everything here is plain Python so a figure can be checked by hand; p99 of n samples is the
nearest-rank value, which for n < 100 is simply the maximum (the summary says `n`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """n, mean, p50, p90, p99, max."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), digits),
        "p50": round(percentile(values, 50), digits),
        "p90": round(percentile(values, 90), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
    }


def ratio(a: float, b: float, digits: int = 3) -> float:
    return round(a / b, digits) if b else math.inf


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


GROWTH_MODELS = {
    "linear": lambda n: n,
    "n log n": lambda n: n * math.log(n),
    "n^1.3": lambda n: n**1.3,
}


def growth_fits(ns: Sequence[float], ys: Sequence[float]) -> dict[str, dict[str, float]]:
    """y = a·f(n) + b for each candidate f, by least squares: slope, intercept, R² and the residual
    sum of squares (the same points, so the smallest residual is the best fit)."""
    fits = {}
    for name, f in GROWTH_MODELS.items():
        fx = [f(n) for n in ns]
        fit = linear_fit(fx, ys)
        fit["rss"] = sum((y - (fit["slope"] * x + fit["intercept"])) ** 2 for x, y in zip(fx, ys, strict=True))
        fits[name] = fit
    return fits


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float]:
    """Least-squares y = slope·x + intercept and its R²."""
    n = len(xs)
    if n < 2:
        return {"slope": math.nan, "intercept": math.nan, "r2": math.nan}
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else math.nan
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys, strict=True))
    return {"slope": slope, "intercept": intercept, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


def spread(values: Sequence[float], digits: int = 3) -> str:
    """min–max and the middle half (quartiles, nearest rank) of a few samples, for a ratio's context."""
    if not values:
        return "n=0"
    return (
        f"{min(values):.{digits}f}–{max(values):.{digits}f}, middle half "
        f"{percentile(values, 25):.{digits}f}–{percentile(values, 75):.{digits}f} (n={len(values)})"
    )
