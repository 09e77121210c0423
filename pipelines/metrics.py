"""Prometheus metrics: the metric objects, the calls that record them, and the text of a scrape.

The places that already log an event record it here too (the LLM call path, the summary cache,
the language check, the ingestor, the upload lane), so `/metrics` and the logs count the same
things. Labels are small closed sets — endpoint names, call kinds, lane names, HTTP methods and
route templates — never a document, job or space id, nor anything else a client chooses.

Several processes (`docassist serve --workers N`): `serve` sets `PROMETHEUS_MULTIPROC_DIR` to
`DATA_DIR/metrics` before its workers start, each worker writes its figures to files there, and
a scrape of any worker sums them (prometheus-client's multiprocess mode). One process needs
nothing. Jobs by state are read from the database at scrape time, so they are the deployment's
whatever process answers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
KINDS = frozenset({"map", "reduce", "focus", "final", "answer", "condense", "verify"})
JOB_STATES = ("pending", "running", "done", "failed")
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNROUTED = "none"  # the `handler` of a request no route takes (prometheus-fastapi-instrumentator's own name)
UPLOAD_STATES = ("pending", "running", "done", "failed", "cancelled")

LLM_CALLS = Counter(
    "docassist_llm_calls",
    "LLM calls that ended, by endpoint, kind and outcome (ok, error)",
    ["endpoint", "kind", "outcome"],
)
LLM_PROMPT_TOKENS = Counter("docassist_llm_prompt_tokens", "prompt tokens sent to LLMs", ["endpoint", "kind"])
LLM_COMPLETION_TOKENS = Counter("docassist_llm_completion_tokens", "tokens LLMs generated", ["endpoint", "kind"])
LLM_SECONDS = Histogram(
    "docassist_llm_call_seconds",
    "time of one LLM call, from its slot to its last token",
    ["endpoint", "kind"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
LLM_TOKENS_PER_SECOND = Histogram(
    "docassist_llm_tokens_per_second",
    "generation speed of one LLM call (completion tokens / seconds)",
    ["endpoint", "kind"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
SUMMARY_CACHE = Counter(
    "docassist_summary_cache", "summary requests answered from the cache (hit) or by a new run (miss)", ["result"]
)
LANGUAGE_RETRIES = Counter(
    "docassist_language_retries", "LLM passes repeated because the output was in the wrong language", ["kind"]
)
INGESTED_DOCUMENTS = Counter("docassist_ingested_documents", "documents indexed (duplicates not counted)")
INGESTED_CHUNKS = Counter("docassist_ingested_chunks", "chunks embedded and indexed")
INGEST_EMBED_SECONDS = Counter("docassist_ingest_embed_seconds", "seconds spent embedding chunks of uploads")
INGEST_CHUNKS_PER_SECOND = Histogram(
    "docassist_ingest_chunks_per_second",
    "embedding speed of one upload (chunks / embedding seconds)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
OCR_PAGES = Counter("docassist_ocr_pages", "scanned pages read by OCR")
OCR_SECONDS = Counter("docassist_ocr_seconds", "seconds spent reading scanned pages by OCR")
ANSWER_FEEDBACK = Counter(
    "docassist_answer_feedback",
    "readers' verdicts on answers, each one stored (a changed verdict counts again)",
    ["rating"],
)
REQUESTS_SHED = Counter(
    "docassist_requests_shed", "requests refused at once (503) because MAX_IN_FLIGHT recent ones were running"
)
LANE_CALLS = Gauge(
    "docassist_lane_calls",
    "calls on a thread lane now: running (up to its workers) or queued behind them",
    ["lane", "state"],
    multiprocess_mode="livesum",
)

# series that exist from the start, at zero: a rate() or a dashboard panel has them before the first event
for _result in ("hit", "miss"):
    SUMMARY_CACHE.labels(_result)
for _kind in ("final", "answer"):
    LANGUAGE_RETRIES.labels(_kind)
for _rating in ("up", "down"):
    ANSWER_FEEDBACK.labels(_rating)


def kind_of(purpose: str) -> str:
    """A call's purpose as a label: one of `KINDS`, anything else `other` (labels stay a closed set)."""
    return purpose if purpose in KINDS else "other"


def http_method(method: str) -> str:
    """A request's method as a label: one of `HTTP_METHODS`, anything else `other`. uvicorn's parser
    takes 35 methods (PROPFIND, MKCOL, …; h11 any token), and each would start series of its own."""
    return method if method in HTTP_METHODS else "other"


def llm_call(endpoint: str, purpose: str, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
    kind = kind_of(purpose)
    LLM_CALLS.labels(endpoint, kind, "ok").inc()
    LLM_PROMPT_TOKENS.labels(endpoint, kind).inc(prompt_tokens)
    LLM_COMPLETION_TOKENS.labels(endpoint, kind).inc(completion_tokens)
    LLM_SECONDS.labels(endpoint, kind).observe(seconds)
    if seconds > 0:
        LLM_TOKENS_PER_SECOND.labels(endpoint, kind).observe(completion_tokens / seconds)


def llm_failed(endpoint: str, purpose: str) -> None:
    LLM_CALLS.labels(endpoint, kind_of(purpose), "error").inc()


def summary_cache(hit: bool) -> None:
    SUMMARY_CACHE.labels("hit" if hit else "miss").inc()


def language_retry(kind: str) -> None:
    LANGUAGE_RETRIES.labels(kind_of(kind)).inc()


def ingested(chunks: int, embed_seconds: float) -> None:
    INGESTED_DOCUMENTS.inc()
    INGESTED_CHUNKS.inc(chunks)
    INGEST_EMBED_SECONDS.inc(embed_seconds)
    if embed_seconds > 0 and chunks:
        INGEST_CHUNKS_PER_SECOND.observe(chunks / embed_seconds)


def ocr(pages: int, seconds: float) -> None:
    """Pages/s is `rate(docassist_ocr_pages) / rate(docassist_ocr_seconds)`."""
    OCR_PAGES.inc(pages)
    OCR_SECONDS.inc(seconds)


def answer_feedback(rating: str) -> None:
    ANSWER_FEEDBACK.labels("up" if rating == "up" else "down").inc()


def request_shed() -> None:
    REQUESTS_SHED.inc()


def lane_load(lane: str, admitted: int, workers: int) -> None:
    """A lane's calls after one was admitted or ended: `admitted` of them, `workers` at a time."""
    LANE_CALLS.labels(lane, "running").set(min(admitted, workers))
    LANE_CALLS.labels(lane, "queued").set(max(0, admitted - workers))


@dataclass(frozen=True)
class JobCounts:
    """Jobs by status, every space together, as the database holds them when scraped."""

    summaries: Mapping[str, int]
    uploads: Mapping[str, int]


class _Jobs(Collector):
    """Background jobs by state, read when scraped (the database is shared by every process)."""

    def __init__(self, counts: JobCounts) -> None:
        self.counts = counts

    def collect(self):  # type: ignore[override]
        family = GaugeMetricFamily("docassist_jobs", "background summary jobs by state", labels=["state"])
        for state in JOB_STATES:
            family.add_metric([state], self.counts.summaries.get(state, 0))
        yield family
        queued = GaugeMetricFamily("docassist_job_queue_depth", "background summary jobs waiting for a worker")
        queued.add_metric([], self.counts.summaries.get("pending", 0))
        yield queued
        uploads = GaugeMetricFamily(
            "docassist_upload_jobs", "upload jobs (uploads answered with 202) by state", labels=["state"]
        )
        for state in UPLOAD_STATES:
            uploads.add_metric([state], self.counts.uploads.get(state, 0))
        yield uploads


def prepare_multiprocess(data_dir: Path) -> Path:
    """Called by `serve --workers N` before its workers start: an empty `DATA_DIR/metrics` for
    their files (what an earlier start left would be counted again otherwise)."""
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def process_stopped() -> None:
    """A worker that stops takes its gauges with it (its counters stay in the sums); one killed
    outright leaves its gauges until the next start empties the folder."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def scrape(job_counts: Callable[[], JobCounts] | None = None) -> tuple[bytes, str]:
    """The Prometheus text of this process (of every worker, in multiprocess mode), with jobs by state."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if job_counts is not None:
        jobs = CollectorRegistry()
        jobs.register(_Jobs(job_counts()))
        body += generate_latest(jobs)
    return body, CONTENT_TYPE_LATEST
