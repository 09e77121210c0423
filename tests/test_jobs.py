"""Pre-computed summaries: background jobs on huey, their status, and restart-and-resume."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Service, ingest, start_service, xquad_article


def wait_job(http: httpx.Client, job_id: str, until: tuple[str, ...] = ("done", "failed"), timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")


def test_ingest_with_generate_summary_answers_at_once_and_the_job_fills_the_cache(shttp, space, small_service):
    started = time.monotonic()
    r = ingest(shttp, space, "cten.txt", xquad_article("ru", 2).encode(), generate_summary="true")
    assert r.status_code == 200
    body = r.json()
    assert body["summary_pending"] is True and body["job_id"]
    health_during = shttp.get("/health")
    assert health_during.status_code == 200, "the service keeps answering while the job runs"
    job = wait_job(shttp, body["job_id"])
    assert job["status"] == "done" and job["progress"]["stage"] == "done" and job["error"] is None
    assert job["progress"]["done"] == job["progress"]["total"] >= 1, "a finished job reads as finished"
    assert job["updated_at"] >= job["created_at"] and time.monotonic() - started < 240
    doc = shttp.get(f"/documents/{body['doc_id']}", params={"space_id": space}).json()
    assert doc["summary_status"] == "done"
    cached = shttp.post("/summarize", json={"doc_id": body["doc_id"], "space_id": space}).json()
    assert cached["cached"] is True and cached["language"] == "ru"
    log = small_service.log()
    assert "Background job queued" in log and "Background summary done" in log
    again = ingest(shttp, space, "cten.txt", xquad_article("ru", 2).encode(), generate_summary="true").json()
    assert again["duplicate"] is True and again["summary_pending"] is False and again["job_id"] is None


def test_job_progress_is_visible_while_it_runs(shttp, space):
    body = ingest(shttp, space, "big.txt", xquad_article("en", 10).encode(), generate_summary="true").json()
    seen = set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        doc = shttp.get(f"/documents/{body['doc_id']}", params={"space_id": space}).json()
        seen.add(doc["summary_status"])
        if doc["summary_status"] == "running":
            assert doc["summary_job_id"] == body["job_id"] and "stage" in doc["summary_progress"]
        job = shttp.get(f"/jobs/{body['job_id']}").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert "running" in seen and job["status"] == "done"


def test_unknown_job_is_404(shttp):
    r = shttp.get("/jobs/does-not-exist")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_delete_removes_cached_summaries_and_jobs(shttp, space):
    body = ingest(shttp, space, "k.txt", "Байкал — самое глубокое озеро планеты.".encode(), generate_summary="true")
    job_id = body.json()["job_id"]
    wait_job(shttp, job_id)
    doc_id = body.json()["doc_id"]
    assert shttp.delete(f"/documents/{doc_id}", params={"space_id": space}).status_code == 200
    assert shttp.get(f"/jobs/{job_id}").status_code == 404
    ingest(shttp, space, "k.txt", "Байкал — самое глубокое озеро планеты.".encode())
    assert shttp.post("/summarize", json={"doc_id": doc_id, "space_id": space}).json()["cached"] is False


def _kill_hard(svc: Service) -> None:
    """Simulate a crash: SIGKILL the service and its children, no shutdown code runs."""
    children = subprocess.run(["pgrep", "-P", str(svc.proc.pid)], capture_output=True, text=True).stdout.split()
    svc.proc.send_signal(signal.SIGKILL)
    svc.proc.wait()
    for pid in children:
        subprocess.run(["kill", "-9", pid], capture_output=True)


@pytest.mark.slow
def test_a_job_interrupted_by_a_crash_resumes_after_restart(tmp_path: Path, llama_env: dict[str, str]):
    env = {"LLM_CONTEXT_WINDOW": "1024", **llama_env}
    svc = start_service(tmp_path / "a", **env)
    data_dir = svc.data_dir
    try:
        with svc.client() as c:
            # 5,915 characters: three map parts in a 1,024-token window, so the crash comes after one of
            # them (between two, or during the call over their results when they end together)
            body = ingest(c, "resume", "cten.txt", xquad_article("ru", 6).encode(), generate_summary="true").json()
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                job = c.get(f"/jobs/{body['job_id']}").json()
                stage, done = job["progress"].get("stage"), job["progress"].get("done", 0)
                if (stage == "map" and done >= 1) or stage in ("reduce", "final"):  # map parts may end together
                    break
                if job["status"] not in ("pending", "running"):
                    break  # over before a map part was seen done: the assert below says so at once
                time.sleep(0.1)
            assert job["status"] == "running", job
    finally:
        _kill_hard(svc)
    svc2 = start_service(tmp_path / "b", DATA_DIR=str(data_dir), **env)
    try:
        with svc2.client() as c:
            job = wait_job(c, body["job_id"])
            assert job["status"] == "done" and job["attempts"] == 2
            summary = c.post("/summarize", json={"doc_id": body["doc_id"], "space_id": "resume"}).json()
            assert summary["cached"] is True
            assert summary["usage"]["resumed_calls"] >= 1, "map results from before the crash were reused"
        assert "Background job resumed after restart" in svc2.log()
    finally:
        svc2.stop()
