"""`/metrics` on a real keyed `docassist serve`: who may read it, and that what an operator would
chart is there — requests by route template and status, LLM calls and tokens by endpoint and kind,
jobs by state, lanes, ingest speed — with no document id in any label; and that every metric the
committed Grafana dashboard plots exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Integrations

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "docassist.json"


def scrape(it: Integrations) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = httpx.get(f"{it.service.url}/metrics", headers=it.admin, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == x for k, x in labels.items()))


def test_only_a_key_for_every_space_reads_metrics(integrations: Integrations):
    url = f"{integrations.service.url}/metrics"
    assert httpx.get(url, timeout=30).status_code == 401
    limited = httpx.get(url, headers=integrations.team, timeout=30)
    assert limited.status_code == 403 and "every space" in limited.json()["error"]["message"]
    assert httpx.get(url, headers=integrations.admin, timeout=30).status_code == 200


def test_requests_ingest_lanes_and_jobs_are_counted_without_ids(integrations: Integrations):
    it = integrations
    with it.service.client(**it.team) as client:
        assert client.post("/search", json={"q": "Angara", "space_id": "team", "top_k": 2}).status_code == 200
        assert client.get(f"/documents/{it.doc_id}", params={"space_id": "team"}).status_code == 200
        assert client.get("/documents/nonexistent-doc", params={"space_id": "team"}).status_code == 404
    samples = scrape(it)
    assert value(samples, "http_requests_total", handler="/search", method="POST", status="200") >= 1
    # a route template, never the document id of the path
    assert value(samples, "http_requests_total", handler="/documents/{doc_id}", status="200") >= 1
    assert value(samples, "http_requests_total", handler="/documents/{doc_id}", status="404") >= 1
    assert value(samples, "http_request_duration_seconds_count", handler="/search", status="200") >= 1
    text = json.dumps(samples)
    assert it.doc_id not in text and "nonexistent-doc" not in text
    assert value(samples, "docassist_ingested_documents_total") >= 1
    assert value(samples, "docassist_ingested_chunks_total") >= 1
    assert value(samples, "docassist_ingest_chunks_per_second_count") >= 1
    for state in ("pending", "running", "done", "failed"):
        assert f'"state": "{state}"' in text  # every state is reported, zero or not
    assert "docassist_job_queue_depth" in samples
    assert value(samples, "docassist_lane_calls", lane="uploads", state="queued") == 0


def test_every_metric_the_dashboard_plots_exists(integrations: Integrations):
    it = integrations
    with it.service.client(**it.team) as client:  # an LLM call, so LLM metrics have their first samples
        r = client.post("/ask", json={"q": "What flows out of Lake Baikal?", "space_id": "team", "top_k": 2})
        assert r.status_code == 200, r.text
    samples = scrape(it)
    assert value(samples, "docassist_llm_calls_total", kind="answer", outcome="ok") >= 1
    assert value(samples, "docassist_llm_completion_tokens_total", kind="answer") > 0
    assert value(samples, "docassist_llm_prompt_tokens_total", kind="answer") > 0
    assert value(samples, "docassist_llm_tokens_per_second_count", kind="answer") >= 1
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    plotted = {name for e in exprs for name in re.findall(r"\b(docassist_\w+|http_\w+)", e)}
    missing = sorted(name for name in plotted if name not in samples)
    assert not missing, f"the dashboard plots metrics /metrics does not have: {missing}"
