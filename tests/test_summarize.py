"""`POST /summarize` and `/summarize-stream` over real HTTP against the real llama.cpp server,
with a 1,024-token context window so whole articles take the map-reduce path."""

from __future__ import annotations

import threading
import time

import httpx

from docassist.pipelines.language import detect_language
from tests.conftest import Service, ingest, sse_events, xquad_article

LONG = 6  # XQuAD article "Ctenophora": ~5.9k chars ru / ~5.5k en, longer than the 1,024-token window
# Summaries are cached per space and text: each test summarizes an article no other test does.


def summarize(http: httpx.Client, space: str, doc_id: str, **extra) -> httpx.Response:
    return http.post("/summarize", json={"doc_id": doc_id, "space_id": space, **extra})


def test_long_russian_document_is_summarized_through_the_tree_in_russian(shttp, space, small_service: Service):
    text = xquad_article("ru", LONG)
    doc = ingest(shttp, space, "ctenophora_ru.txt", text.encode()).json()
    r = summarize(shttp, space, doc["doc_id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strategy"] == "tree" and body["cached"] is False
    assert body["language"] == "ru"
    assert detect_language(body["summary"]).code == "ru", body["summary"]
    assert body["usage"]["llm_calls"] >= 3 and body["usage"]["completion_tokens"] > 0
    assert body["usage"]["prompt_tokens"] > 1024, "the whole document was read"
    assert body["timing"]["map_s"] > 0 and body["timing"]["total_s"] > 0
    log = small_service.log()
    assert "[TREE] Plan: map-reduce" in log and "[Language Detection]" in log
    assert "Input text language: ru (Русский)" in log


def test_long_english_document_is_summarized_through_the_tree_in_english(shttp, space):
    doc = ingest(shttp, space, "ctenophora_en.md", xquad_article("en", LONG).encode()).json()
    body = summarize(shttp, space, doc["doc_id"]).json()
    assert body["strategy"] == "tree" and body["language"] == "en"
    assert detect_language(body["summary"]).code == "en", body["summary"]


def test_short_document_takes_one_call_and_is_then_cached(shttp, space):
    text = "Казань — столица Республики Татарстан. Казанский кремль внесён в список всемирного наследия ЮНЕСКО."
    doc = ingest(shttp, space, "kazan.txt", text.encode()).json()
    first = summarize(shttp, space, doc["doc_id"]).json()
    assert first["strategy"] == "direct" and first["usage"]["llm_calls"] == 1 and first["cached"] is False
    assert detect_language(first["summary"]).code == "ru"
    again = summarize(shttp, space, doc["doc_id"]).json()
    assert again["cached"] is True and again["summary"] == first["summary"]
    assert again["timing"]["computed"] == first["timing"], "the cached answer carries the run's own timing"
    assert again["usage"] == first["usage"] and again["timing"]["lookup_ms"] < 1000
    forced = summarize(shttp, space, doc["doc_id"], force=True).json()
    assert forced["cached"] is False


def test_stream_sends_start_processing_deltas_and_complete(shttp, space):
    doc = ingest(shttp, space, "black_death.txt", xquad_article("ru", 8).encode()).json()
    r = shttp.post("/summarize-stream", json={"doc_id": doc["doc_id"], "space_id": space})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    raw = r.content.decode("utf-8")
    assert "\\u04" not in raw, "Russian must be readable in the stream"
    events = sse_events(raw)
    names = [n for n, _ in events]
    assert names[0] == "start" and names[-1] == "complete"
    start = events[0][1]
    assert start["strategy"] == "tree" and start["chunks"] >= 2 and start["language"] == "ru" and start["eta_s"] > 0
    processing = [d for n, d in events if n == "processing"]
    assert processing and {p["stage"] for p in processing} >= {"map"}
    assert all(p["eta_s"] >= 0 and 1 <= p["done"] <= p["total"] for p in processing), processing
    assert names.index("processing") < names.index("summary")
    deltas = "".join(d["delta"] for n, d in events if n == "summary")
    complete = events[-1][1]
    assert complete["summary"] == deltas.strip() and complete["cached"] is False
    assert set(complete) >= {"summary", "cached", "timing", "usage"}
    cached = sse_events(shttp.post("/summarize-stream", json={"doc_id": doc["doc_id"], "space_id": space}).text)
    assert [n for n, _ in cached] == ["start", "summary", "complete"]
    assert cached[-1][1]["cached"] is True and cached[1][1]["delta"] == complete["summary"]


def test_concurrent_requests_for_one_summary_compute_it_once(shttp, space, small_service: Service):
    doc = ingest(shttp, space, "cten.txt", xquad_article("en", 3).encode()).json()
    results: list[dict] = []

    def call() -> None:
        with small_service.client() as c:
            results.append(summarize(c, space, doc["doc_id"]).json())

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len({r["summary"] for r in results}) == 1
    assert small_service.log().count(f"doc_id={doc['doc_id']} strategy=") == 1, "one computation, three answers"


def test_client_disconnect_cancels_the_llm_work(shttp, space, small_service: Service):
    doc = ingest(shttp, space, "cten.txt", xquad_article("en", 23).encode()).json()
    with (
        httpx.Client(base_url=small_service.url, timeout=60) as c,
        c.stream("POST", "/summarize-stream", json={"doc_id": doc["doc_id"], "space_id": space}) as r,
    ):
        for line in r.iter_lines():
            if line.startswith("event: start"):
                break
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "[SUMMARY] Cancelled" not in small_service.log():
        time.sleep(0.2)
    assert f"[SUMMARY] Cancelled\n  doc_id={doc['doc_id']}" in small_service.log()
    time.sleep(1)
    status = shttp.get(f"/documents/{doc['doc_id']}", params={"space_id": space}).json()["summary_status"]
    assert status == "none", "nothing was cached for a cancelled run"


def test_summarize_errors(shttp, space):
    r = shttp.post("/summarize", json={"doc_id": "nope", "space_id": space})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert shttp.post("/summarize", json={"space_id": space}).status_code == 422
    assert shttp.post("/summarize-stream", json={"doc_id": "nope", "space_id": space}).status_code == 404
    r = shttp.post("/summarize", json={"doc_id": "x", "space_id": "bad space"})
    assert r.status_code == 422
