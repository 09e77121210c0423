"""An LLM endpoint that is down: clear 503s, failed retryable jobs, nothing lost."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ingest, start_service

pytestmark = pytest.mark.slow  # a service of its own


def test_llm_down_is_503_naming_the_endpoint_and_jobs_fail_retryably(tmp_path: Path):
    svc = start_service(tmp_path, LLAMA_SERVER_URL="http://127.0.0.1:9/v1")
    try:
        with svc.client() as c:
            body = ingest(c, "s", "a.txt", "Озеро Байкал — самое глубокое озеро.".encode(), generate_summary="true")
            assert body.status_code == 200, "ingest needs no LLM and keeps working"
            doc = body.json()
            r = c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "s"})
            assert r.status_code == 503
            err = r.json()["error"]
            assert err["code"] == "llm_unavailable" and "'local'" in err["message"]
            assert "127.0.0.1:9" not in err["message"] and "127.0.0.1:9" in svc.log(), "the address is for the log"
            stream = c.post("/summarize-stream", json={"doc_id": doc["doc_id"], "space_id": "s"}).text
            assert "event: error" in stream and "llm_unavailable" in stream
            deadline = time.monotonic() + 60
            while (job := c.get(f"/jobs/{doc['job_id']}").json())["status"] not in ("failed", "done"):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert job["status"] == "failed" and job["retryable"] is True
            assert job["error"]["code"] == "llm_unavailable"
            assert c.get(f"/documents/{doc['doc_id']}", params={"space_id": "s"}).json()["summary_status"] == "failed"
            assert c.post("/search", json={"q": "Байкал", "space_id": "s"}).json()["sources"], "data stays"
            retried = c.post(f"/jobs/{doc['job_id']}/retry").json()
            assert retried["status"] in ("pending", "running") and retried["error"] is None, "queued again"
            deadline = time.monotonic() + 60
            while (again := c.get(f"/jobs/{doc['job_id']}").json())["attempts"] < 2:
                assert time.monotonic() < deadline, again
                time.sleep(0.2)
            assert again["attempts"] == job["attempts"] + 1, "the retry ran the job once more"
            asked = httpx.post(f"{svc.url}/ask", json={"q": "Какое озеро самое глубокое?", "space_id": "s"})
            assert asked.status_code == 200 and "Байкал" in asked.json()["answer"], "a quoted answer needs no LLM"
    finally:
        svc.stop()
