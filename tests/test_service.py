"""Health, model configuration and the supervised llama.cpp server."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from docassist.pipelines.llm.llama_server import extra_buffers_crash
from tests.conftest import Service, start_service
from tests.inprocess import start_in_process


def test_health_is_200_with_the_llama_cpp_endpoint_healthy(http):
    r = http.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["vector_store"]["ok"] is True
    local = body["checks"]["llm"]["local"]
    assert local["ok"] is True and local["model"] == "gemma-3-270m-q4_k_m"
    assert local["latency_ms"] >= 0


def test_model_config_shows_the_embedded_model(http):
    body = http.get("/model-config").json()
    assert body["model_name"] == "gemma-3-270m-q4_k_m"
    assert body["provider"] == "llama.cpp"
    assert body["context_window"] == 8192
    assert body["summarization_threshold"] == 3000
    assert body["summarization_max_output"] == 512
    assert body["endpoint"] == "local" and set(body["endpoints"]) == {"local"}
    assert body["endpoints"]["local"]["base_url"].startswith("http://127.0.0.1:")
    assert body["max_tokens"] == 2048
    unknown = http.get("/model-config", params={"endpoint": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def _llama_pid(service: Service) -> int:
    port = httpx.get(f"{service.url}/model-config").json()["endpoints"]["local"]["base_url"].split(":")[2][:-3]
    out = subprocess.run(["pgrep", "-f", f"llama_cpp.server.*--port {port}"], capture_output=True, text=True)
    return int(out.stdout.split()[0])


@pytest.mark.slow
def test_llama_server_is_restarted_when_it_dies_and_stopped_on_shutdown(tmp_path: Path):
    svc = start_service(tmp_path)
    try:
        pid = _llama_pid(svc)
        subprocess.run(["kill", "-9", str(pid)], check=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            body = httpx.get(f"{svc.url}/health", timeout=10).json()
            if body["checks"]["llm"]["local"]["ok"] and body["checks"]["llm"]["local"]["restarts"] >= 1:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"llama.cpp server was not restarted: {body}")
        new_pid = _llama_pid(svc)
        assert new_pid != pid
        assert "[LLAMA.CPP SERVER] Died, restarting" in svc.log()
    finally:
        assert svc.stop() == 0
    time.sleep(0.5)
    assert subprocess.run(["kill", "-0", str(new_pid)], capture_output=True).returncode != 0, "child left running"


def test_health_says_what_works_when_no_llm_endpoint_answers(tmp_path: Path):
    """vllm-mig profile pointed at closed ports: the service starts; ingest and search work, LLM work does not."""
    closed = "http://127.0.0.1:9/v1"
    svc = start_in_process(tmp_path, LLM_MODE="vllm", VLLM_MEDIUM_URL=closed, VLLM_SMALL_URL=closed, QDRANT_URL="")
    try:
        r = httpx.get(f"{svc.url}/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "degraded"
        assert body["capabilities"] == {"ingest": "ok", "search": "ok", "summaries": "down", "answers": "down"}
        assert body["checks"]["vector_store"]["ok"] is True
        assert {k: v["state"] for k, v in body["checks"]["llm"].items()} == {"medium": "down", "small": "down"}
        assert any("'medium' is down" in reason for reason in body["reasons"])
        assert httpx.get(f"{svc.url}/health", params={"require": "search"}).status_code == 200
        assert httpx.get(f"{svc.url}/health", params={"require": "search,answers"}).status_code == 503
        assert httpx.get(f"{svc.url}/health", params={"require": "magic"}).status_code == 422
        cfg = httpx.get(f"{svc.url}/model-config").json()
        assert (cfg["model_name"], cfg["provider"], cfg["context_window"]) == ("openai/gpt-oss-20b", "vllm", 8192)
        assert (cfg["summarization_threshold"], cfg["summarization_max_output"]) == (3000, 1500)
        assert cfg["endpoints"]["small"]["model_name"] == "mistralai/Mistral-7B-Instruct-v0.3"
    finally:
        svc.stop()


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")  # nothing answers on :9
def test_vector_store_down_is_503_and_health_says_so(tmp_path: Path):
    svc = start_in_process(tmp_path, QDRANT_URL="http://127.0.0.1:9")
    try:
        health = httpx.get(f"{svc.url}/health")
        assert health.status_code == 503 and health.json()["checks"]["vector_store"]["ok"] is False
        r = httpx.post(f"{svc.url}/search", json={"q": "x", "space_id": "s"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "vector_store_unavailable"
        assert r.headers["Retry-After"] == "5", "a 503 says when /health will have checked again"
        r = httpx.post(f"{svc.url}/ingest", files={"file": ("a.txt", b"some text here")}, data={"space_id": "s"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "vector_store_unavailable"
        assert httpx.get(f"{svc.url}/documents", params={"space_id": "s"}).json()["documents"] == [], (
            "nothing half-written"
        )
    finally:
        svc.stop()


def _llama_server_pid(port: int) -> int:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"llama_cpp.server" in args and str(port).encode() in args:
            return int(cmdline.parent.name)
    raise AssertionError(f"no llama.cpp server on port {port}")


@pytest.mark.slow
def test_embedded_llm_keeps_no_per_token_logits_in_memory(http, service: Service):
    """llama-cpp-python's server keeps every prompt token's logits by default (n_ctx × 262k floats
    for Gemma 3: 8 GiB, 5 GB resident after one 3k-token prompt); ours must not."""
    url = http.get("/model-config").json()["endpoints"]["local"]["base_url"]
    prompt = "Lake Baikal is the deepest lake on Earth. " * 300 + "\n\nSummary:"
    body = {"prompt": prompt, "max_tokens": 4}
    assert httpx.post(f"{url}/completions", json=body, headers=service.llama_headers, timeout=300).is_success
    pid = _llama_server_pid(httpx.URL(url).port or 0)
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    assert peak_kb < 2_000_000, f"llama.cpp server peak memory {peak_kb / 1e6:.1f} GB"


def test_the_embedded_llm_yields_the_cores_to_the_services_reads_and_searches(http, service: Service):
    """Generation runs below the service's own priority and above uploads': under contention a read
    or a search is not queued behind seconds of another key's answers (bench `attacks`)."""
    import os

    from docassist.pipelines.priorities import BULK_NICE, GENERATION_NICE

    url = http.get("/model-config").json()["endpoints"]["local"]["base_url"]
    server = _llama_server_pid(httpx.URL(url).port or 0)
    assert os.getpriority(os.PRIO_PROCESS, service.pid) == 0
    assert os.getpriority(os.PRIO_PROCESS, server) == GENERATION_NICE and 0 < GENERATION_NICE < BULK_NICE


def test_on_an_amx_cpu_the_embedded_llm_answers_from_plain_cpu_buffers(tmp_path: Path, http, service: Service):
    """llama.cpp's AMX buffers segfault on Gemma's first token (llama-cpp-python 0.3.36 built on a
    Xeon with AMX): the service must see AMX in the CPU's flags and the server must still answer."""
    amx, epyc = tmp_path / "amx", tmp_path / "epyc"
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    epyc.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert extra_buffers_crash(amx) and not extra_buffers_crash(epyc)
    assert not extra_buffers_crash(tmp_path / "absent")
    url = http.get("/model-config").json()["endpoints"]["local"]["base_url"]
    body = {"prompt": "Lake Baikal is the deepest lake on Earth. In one sentence:", "max_tokens": 8}
    r = httpx.post(f"{url}/completions", json=body, headers=service.llama_headers, timeout=300)
    assert r.is_success and r.json()["choices"][0]["text"].strip()
    log = service.log()
    assert "[LLAMA.CPP SERVER] Ready" in log
    assert ("AMX CPU: weights in plain CPU buffers" in log) == extra_buffers_crash()


@pytest.mark.slow
def test_the_services_port_variables_are_not_taken_by_the_embedded_llm_server(tmp_path: Path):
    """llama-cpp-python's server reads PORT and HOST from the environment over its command line:
    `PORT=8777 docassist serve` must be docassist on 8777, not the LLM server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    svc = start_service(tmp_path, PORT=str(port), HOST="127.0.0.1", MODEL="not-a-model")
    try:
        assert httpx.get(f"{svc.url}/health").json()["status"] == "ok"
        with pytest.raises(httpx.ConnectError):  # nothing took the port the variable names
            httpx.get(f"http://127.0.0.1:{port}/v1/models")
    finally:
        svc.stop()
