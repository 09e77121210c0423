"""`/health` tells the truth: busy with our calls is alive, a server that accepts and never answers is
stalled (503, so a load balancer acts), a killed llama.cpp server fails the summary it was writing
with a clear 503 and is restarted, and work that needs no LLM never waits for a busy one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from docassist.bench.service import Service, sse
from tests.conftest import ingest, start_service, xquad_article
from tests.inprocess import start_in_process

pytestmark = pytest.mark.slow  # each test starts and supervises a service of its own


class Silent:
    """A TCP server that accepts connections and never answers: a hung LLM server."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def llama_pid(svc: Service) -> int:
    port = str(httpx.URL(svc.llama_url).port).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"llama_cpp.server" in args and port in args:
            return int(cmdline.parent.name)
    raise AssertionError("no llama.cpp server")


def test_a_hung_llm_server_makes_health_503_within_the_stall_timeout(tmp_path: Path):
    hung = Silent()
    url = f"http://127.0.0.1:{hung.port}/v1"
    svc = start_in_process(
        tmp_path,
        LLM_MODE="vllm",
        VLLM_MEDIUM_URL=url,
        VLLM_SMALL_URL=url,
        QDRANT_URL="",
        LLM_STALL_TIMEOUT_S="3",
        LLM_TIMEOUT_S="20",
    )
    try:
        started = time.monotonic()
        r = httpx.get(f"{svc.url}/health", timeout=30)
        assert time.monotonic() - started < 5
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert {v["state"] for v in r.json()["checks"]["llm"].values()} == {"stalled"}
        assert any("stalled" in reason for reason in r.json()["reasons"])
        assert httpx.get(f"{svc.url}/documents", params={"space_id": "s"}).status_code == 200, "the rest works"
    finally:
        svc.stop()
        hung.close()


def test_a_killed_llama_server_fails_the_summary_clearly_and_the_next_one_succeeds(tmp_path: Path):
    svc = start_in_process(tmp_path, LLM_CONTEXT_WINDOW="1024")  # its own llama.cpp server, killed below
    try:
        with svc.client() as c:
            doc = ingest(c, "k", "long.txt", xquad_article("en", 14).encode()).json()
            request = {"doc_id": doc["doc_id"], "space_id": "k"}
            events: list[tuple[str, dict]] = []
            with c.stream("POST", "/summarize-stream", json=request) as r:
                for name, data in sse(r):
                    events.append((name, data))
                    if name == "start":
                        health = c.get("/health").json()["checks"]["llm"]["local"]
                        time.sleep(1.5)
                        busy = c.get("/health").json()["checks"]["llm"]["local"]
                        os.kill(llama_pid(svc), signal.SIGKILL)
            name, data = events[-1]
            assert name == "error" and data["code"] == "llm_unavailable" and "'local'" in data["message"]
            assert health["state"] in ("ok", "busy") and busy["state"] == "busy" and busy["activity"]["calls"] == 1
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                local = c.get("/health").json()["checks"]["llm"]["local"]
                if local["state"] == "ok" and local["restarts"] >= 1:
                    break
                time.sleep(0.5)
            assert local["restarts"] >= 1
            again = c.post("/summarize", json=request)
            assert again.status_code == 200 and again.json()["summary"]
    finally:
        svc.stop()


def test_ask_in_an_empty_space_does_not_wait_for_a_busy_llm(tmp_path: Path, llama_env: dict[str, str]):
    svc = start_in_process(tmp_path, **llama_env)
    try:
        with svc.client() as c:
            doc = ingest(c, "busy", "long.txt", xquad_article("ru", 2).encode()).json()
            thread = threading.Thread(
                target=lambda: c.post("/summarize", json={"doc_id": doc["doc_id"], "space_id": "busy"})
            )
            thread.start()
            deadline = time.monotonic() + 60
            while c.get("/health").json()["checks"]["llm"]["local"]["state"] != "busy":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            started = time.monotonic()
            r = c.post("/ask", json={"q": "Что такое Байкал?", "space_id": "empty_space"})
            asked = time.monotonic() - started
            still_busy = c.get("/health").json()["checks"]["llm"]["local"]["state"] == "busy"
            thread.join()
        assert r.status_code == 200 and r.json()["sources"] == [] and r.json()["usage"]["llm_calls"] == 0
        assert asked < 2.0 and still_busy, f"/ask took {asked:.1f}s while the LLM was busy"
    finally:
        svc.stop()


def test_the_llama_server_dies_with_the_service_and_a_stale_one_is_cleaned_up(tmp_path: Path):
    svc = start_service(tmp_path)
    pid = llama_pid(svc)
    svc.proc.send_signal(signal.SIGKILL)
    svc.proc.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "the child died with its parent"
    # a server left running by an earlier process (here: one started by hand) is killed at start
    stale = subprocess.Popen(["python", "-c", "import time; time.sleep(600)", "llama_cpp.server"])
    (svc.data_dir / "logs" / "llama-server.pid").write_text(str(stale.pid))
    svc2 = start_service(tmp_path / "again", DATA_DIR=str(svc.data_dir))
    try:
        assert stale.wait(10) == -signal.SIGKILL
        assert "Killed a server left by an earlier process" in svc2.log()
    finally:
        svc2.stop()
