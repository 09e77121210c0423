"""Fixtures that start the real parts once: `docassist serve` (real uvicorn, which starts the
real llama.cpp server with the real Gemma GGUF), Qdrant local mode in a temporary folder,
and the real embedding model. Tests talk HTTP to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docassist.evals.cli import EVALDATA

FIXTURES = Path(__file__).parent / "fixtures"
START_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300, headers=headers)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def base_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "VLLM_", "OLLAMA_", "QDRANT_"))}
    env.update({"HF_HUB_OFFLINE": "1", "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    env.pop("API_KEYS", None)
    env.update(overrides)
    return env


def start_service(tmp: Path, wait_status: tuple[int, ...] = (200,), **env: str) -> Service:
    """Run `docassist serve` on a free port and wait until /health answers one of `wait_status`."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = tmp / "service.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "docassist"), "serve", "--port", str(port)],
        env=base_env(tmp / "data", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )
    service = Service(f"http://127.0.0.1:{port}", tmp / "data", log_path, proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docassist exited with {proc.returncode}:\n{service.log()[-4000:]}")
        try:
            if httpx.get(f"{service.url}/health", timeout=10).status_code in wait_status:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    service.stop()
    raise RuntimeError(f"docassist did not become healthy:\n{service.log()[-4000:]}")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The embedded default, as a newcomer runs it (upload limit lowered to test 413 cheaply)."""
    svc = start_service(tmp_path_factory.mktemp("svc"), MAX_UPLOAD_MB="1")
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def http(service: Service) -> Iterator[httpx.Client]:
    with service.client() as client:
        yield client


@pytest.fixture
def space(request: pytest.FixtureRequest) -> str:
    """A fresh space per test, so tests never see each other's documents."""
    return "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]


def ingest(http: httpx.Client, space: str, filename: str, data: bytes, **form: str) -> httpx.Response:
    return http.post("/ingest", files={"file": (filename, data)}, data={"space_id": space, **form})


@pytest.fixture(scope="session")
def small_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The embedded default with a 1,024-token context window, so documents of a few
    paragraphs take the map-reduce path in seconds."""
    svc = start_service(tmp_path_factory.mktemp("small"), LLM_CONTEXT_WINDOW="1024")
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def shttp(small_service: Service) -> Iterator[httpx.Client]:
    with small_service.client() as client:
        yield client


def xquad_article(lang: str, index: int = 0, split: str = "dev") -> str:
    """One XQuAD article: its paragraphs joined in order (about 1.5–4k tokens)."""
    rows = [json.loads(line) for line in (EVALDATA / f"xquad_{lang}" / f"{split}.jsonl").open(encoding="utf-8")]
    titles = list(dict.fromkeys(r["title"] for r in rows))
    return "\n\n".join(dict.fromkeys(r["context"] for r in rows if r["title"] == titles[index]))


def sse_events(raw: str) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event, data) pairs, skipping comments."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if name:
            events.append((name, json.loads("\n".join(data))))
    return events
