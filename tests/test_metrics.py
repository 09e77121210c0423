"""`/metrics` on a real keyed `docassist serve`: who may read it, and that what an operator would
chart is there — requests by route template and status, LLM calls and tokens by endpoint and kind,
jobs by state, lanes, ingest speed — with no document id in any label; and that every metric the
committed Grafana dashboard plots exists."""

from __future__ import annotations

import json
import random
import re
import string
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from docassist.pipelines import metrics
from tests.conftest import INTEGRATIONS_SCRAPER, Integrations

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


def test_metrics_key_reads_metrics_and_nothing_else(integrations: Integrations):
    scraper = {"Authorization": f"Bearer {INTEGRATIONS_SCRAPER}"}
    scraped = httpx.get(f"{integrations.service.url}/metrics", headers=scraper, timeout=30)
    assert scraped.status_code == 200 and "docassist_" in scraped.text
    for method, path in (("GET", "/documents?space_id=team"), ("GET", "/model-config"), ("POST", "/search")):
        r = httpx.request(method, f"{integrations.service.url}{path}", headers=scraper, json={"q": "x"}, timeout=30)
        assert r.status_code == 401, (path, r.status_code)


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
    for state in ("pending", "running", "done", "failed", "cancelled"):
        assert ("state", state) in {kv for labels, _ in samples["docassist_upload_jobs"] for kv in labels.items()}
    assert value(samples, "docassist_lane_calls", lane="uploads", state="queued") == 0


# methods uvicorn's parser (httptools) accepts beyond the standard ones: each used to start series of its own
UNCOMMON_METHODS = (
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "PURGE", "REPORT",
    "MKACTIVITY", "CHECKOUT", "MERGE", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "LINK", "UNLINK", "TRACE", "ACL",
)  # fmt: skip


def http_series(it: Integrations) -> tuple[set[tuple[str, str, str]], int]:
    """The (handler, method, status) series of `http_requests_total`, and the scrape's length in lines."""
    r = httpx.get(f"{it.service.url}/metrics", headers=it.admin, timeout=30)
    assert r.status_code == 200, r.text
    series = {
        (s.labels["handler"], s.labels["method"], s.labels["status"])
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == "http_requests_total"
    }
    return series, len(r.text.splitlines())


def test_requests_with_any_method_and_path_add_only_a_handful_of_series(integrations: Integrations):
    """Labels are closed sets: a method outside the standard seven is `other`, a path no route
    takes is `none` — a path with a slash after a route template (`/jobs/<random>/`, which the
    router redirects) included. Hundreds of requests with random methods and paths used to add a
    series each; now they add at most the few combinations below, and are still counted."""
    it = integrations
    rng = random.Random(40)
    before, lines_before = http_series(it)
    sent = 300
    with it.service.client(**it.admin) as client:
        for _ in range(sent):
            token = "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
            method = rng.choice((*UNCOMMON_METHODS, "GET"))
            paths = (f"/{token}", f"/{token}/{token[::-1]}", f"/jobs/{token}/", f"/documents/{token}/", "/ask")
            path = rng.choice(paths)
            assert client.request(method, path).status_code in (307, 404, 405)
    after, lines_after = http_series(it)
    added = after - before
    # at most: (none | /ask) × (other | GET) × (404 | 307 | 405), of which only these can occur
    possible = {(h, m, s) for h, s in (("none", "404"), ("none", "307"), ("/ask", "405")) for m in ("other", "GET")}
    assert added <= possible, sorted(added - possible)
    assert lines_after - lines_before < 200, f"{sent} requests grew the scrape by {lines_after - lines_before} lines"
    samples = scrape(it)
    assert value(samples, "http_requests_total", handler="none", method="other") >= 100, "counted, not dropped"
    # and each is answered as before: 405 with the methods the path takes, 404 for a path no route takes
    with it.service.client(**it.admin) as client:
        not_allowed = client.request("PROPFIND", "/ask")
        assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "POST"
        assert not_allowed.json()["error"]["code"] == "method_not_allowed"
        missing = client.request("MKCOL", "/no-such-path")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_every_metric_the_dashboard_plots_exists(integrations: Integrations):
    it = integrations
    # an LLM call, so LLM metrics have their first samples (an answer of the embedded model quotes: no call)
    with it.service.client(**it.team) as client:
        r = client.post("/summarize", json={"doc_id": it.doc_id, "space_id": "team", "force": True})
        assert r.status_code == 200, r.text
    samples = scrape(it)
    assert value(samples, "docassist_llm_calls_total", kind="final", outcome="ok") >= 1
    assert value(samples, "docassist_llm_completion_tokens_total", kind="final") > 0
    assert value(samples, "docassist_llm_prompt_tokens_total", kind="final") > 0
    assert value(samples, "docassist_llm_tokens_per_second_count", kind="final") >= 1
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    plotted = {name for e in exprs for name in re.findall(r"\b(docassist_\w+|http_\w+)", e)}
    missing = sorted(name for name in plotted if name not in samples)
    assert not missing, f"the dashboard plots metrics /metrics does not have: {missing}"


def _python(code: str, env_dir: Path) -> str:
    env = {"PATH": "/usr/bin:/bin", metrics.MULTIPROC_ENV: str(env_dir)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_with_several_workers_a_scrape_sums_every_workers_figures(tmp_path: Path, monkeypatch):
    """What `serve --workers N` sets up (a Qdrant server, which these machines lack, is what it needs
    to run for real): each worker process records into DATA_DIR/metrics, any one's scrape sums them."""
    stale = tmp_path / "metrics" / "counter_12345.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier start")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "")  # restored at the end: later services start without it
    folder = metrics.prepare_multiprocess(tmp_path)
    assert folder == tmp_path / "metrics" and not any(folder.iterdir())
    worker = (
        "from docassist.pipelines import metrics\n"
        "metrics.llm_call('small', 'answer', 100, 20, 2.0)\n"
        "metrics.lane_load('uploads', 3, 2)\n"
    )
    _python(worker, folder)
    _python(worker + "metrics.process_stopped()\n", folder)  # this one stopped: its gauges go
    text = _python(
        "from docassist.pipelines import metrics\n"
        "counts = metrics.JobCounts(summaries={'pending': 4}, uploads={'running': 1})\n"
        "print(metrics.scrape(lambda: counts)[0].decode())",
        folder,
    )
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    assert value(samples, "docassist_llm_calls_total", endpoint="small", kind="answer", outcome="ok") == 2
    assert value(samples, "docassist_llm_prompt_tokens_total", endpoint="small") == 200
    assert value(samples, "docassist_llm_call_seconds_count", endpoint="small") == 2
    assert value(samples, "docassist_lane_calls", lane="uploads", state="queued") == 1  # the live worker's
    assert value(samples, "docassist_jobs", state="pending") == 4 and value(samples, "docassist_job_queue_depth") == 4
    assert value(samples, "docassist_upload_jobs", state="running") == 1


def test_metrics_loopback_lets_a_scraper_on_this_host_in_but_not_a_forwarded_request():
    """`METRICS_LOOPBACK`: the guard, as plain ASGI, in front of a route that answers 200 — a
    loopback peer reads /metrics without a key; one whose request a proxy forwarded, a peer
    elsewhere, or any other route still needs one; and without the setting nobody is let in."""
    import asyncio

    from starlette.responses import PlainTextResponse

    from docassist.api.callers import Callers
    from docassist.api.guard import RequestGuard
    from docassist.pipelines.keys import parse_api_keys

    async def route(scope, receive, send):
        await PlainTextResponse("docassist_up 1")(scope, receive, send)

    keys = parse_api_keys("an-admin-key-0123456789:*")

    async def status(loopback: bool, path: str = "/metrics", client: str = "127.0.0.1", **headers: str) -> int:
        guard = RequestGuard(route, Callers(keys, None), 1 << 20, metrics_loopback=loopback)
        transport = httpx.ASGITransport(app=guard, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://docassist") as client_:
            return (await client_.get(path, headers=headers)).status_code

    async def check() -> None:
        assert await status(True) == 200
        assert await status(True, client="::1") == 200
        assert await status(True, **{"X-Forwarded-For": "203.0.113.9"}) == 401, "a proxied request is not local"
        assert await status(True, client="192.0.2.7") == 401
        assert await status(True, path="/documents") == 401, "only /metrics"
        assert await status(False) == 401

    asyncio.run(check())
