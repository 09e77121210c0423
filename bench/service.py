"""Start and stop a real `docassist serve` (or `docassist worker`) on a temporary DATA_DIR: the
one harness the benchmarks and the tests share.

Clients talk HTTP to it. Benchmark baselines need two more things a client does not: the URL of
the service's own llama.cpp server (from `/model-config`, so the very same requests can be
posted straight to it) and the service's process id (its memory, from /proc).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from docassist.pipelines.environment import process_environment
from docassist.pipelines.llm.llama_server import free_port

START_TIMEOUT_S = 300
ROOT = Path(__file__).resolve().parents[1]
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")  # before bench/__main__ sets its own


_INHERITED_NOT = (
    "LLM_", "VLLM_", "OLLAMA_", "QDRANT_", "LLAMA_SERVER_", "EMBEDDING_", "DATABASE_URL", "REDIS_URL", "API_KEYS",
)  # fmt: skip


def service_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a fresh embedded default: nothing inherited that would point it at
    other servers or keys; `overrides` on top."""
    env = {k: v for k, v in process_environment().items() if not k.startswith(_INHERITED_NOT)}
    env.pop("OMP_WAIT_POLICY", None)
    if USER_OMP_WAIT_POLICY is not None:
        env["OMP_WAIT_POLICY"] = USER_OMP_WAIT_POLICY
    env.update({"HF_HUB_OFFLINE": "1", "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


@contextlib.contextmanager
def fresh_postgres_database(server: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL at `server` (a URL to its maintenance database);
    dropped afterwards. Yields its URL. psycopg is imported here: the benchmarks and tests that
    share no database do not load it."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_redis(url: str) -> Iterator[str]:
    """The Redis database at `url`, flushed before and after. Yields `url` (redis imported here, as psycopg)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def proc_status(pid: int, key: str) -> int:
    """A /proc/<pid>/status figure in kB (VmRSS, VmHWM), 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                kids += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    return kids


class Reachable:
    """What a test or a benchmark reads of a running service, however it runs: its URL, log and
    events, the key of its llama.cpp server. Needs `url`, `data_dir` and `log_path`."""

    url: str
    data_dir: Path
    log_path: Path

    @property
    def llama_key(self) -> str:
        """The key the managed llama.cpp server was started with, read as its operator would."""
        return (self.data_dir / "logs" / "llama-server.key").read_text().strip()

    @property
    def llama_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.llama_key}"}

    def client(self, timeout: float = 300, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, title: str) -> list[dict[str, Any]]:
        """The JSON log records whose event title starts with `title`, oldest first."""
        found = []
        for line in self.log().splitlines():
            if title in line and line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if str(record.get("event", "")).startswith(title):
                    found.append(record)
        return found


@dataclass
class Service(Reachable):
    url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen
    env: dict[str, str]
    llama_url: str = ""  # the managed llama.cpp server, ".../v1"
    model: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return proc_status(self.pid, "VmHWM")

    def llama_rss_kb(self) -> int:
        return sum(proc_status(p, "VmRSS") for p in child_pids(self.pid))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_service(
    workdir: Path,
    wait_status: tuple[int, ...] = (200,),
    command: str = "serve",
    options: tuple[str, ...] = (),
    **env: str,
) -> Service:
    """Run `docassist serve` (with `options`, e.g. `--workers 2`) on a free port and wait until
    `/health` answers one of `wait_status` (`docassist worker`, which serves no HTTP, is waited for
    in its log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"{command}.log"
    full_env = service_env(Path(env.pop("DATA_DIR", workdir / "data")), **env)
    args = [str(Path(sys.executable).parent / "docassist"), command, *options]
    if command == "serve":
        args += ["--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    service = Service(f"http://127.0.0.1:{port}", Path(full_env["DATA_DIR"]), log_path, proc, full_env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docassist {command} exited with {proc.returncode}:\n{service.log()[-4000:]}")
        if command != "serve":
            if "docassist ready" in service.log():
                return service
        else:
            try:
                if httpx.get(f"{service.url}/health", timeout=10).status_code in wait_status:
                    config = httpx.get(f"{service.url}/model-config", timeout=10)
                    if config.status_code == 200:
                        cfg = config.json()
                        endpoint = cfg["endpoints"][cfg["endpoint"]]
                        service.config, service.llama_url, service.model = cfg, endpoint["base_url"], cfg["model_name"]
                    return service
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"docassist {command} did not become ready:\n{service.log()[-4000:]}")


class RssSampler:
    """Samples a process's resident memory in a thread while a block runs; `peak_kb` after."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append(proc_status(self.pid, "VmRSS"))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(proc_status(self.pid, "VmRSS"))

    @property
    def peak_kb(self) -> int:
        return max(self.samples, default=0)


def sse(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a streaming text/event-stream response, as they arrive."""
    yield from _events(response.iter_lines())


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a whole text/event-stream body, comments skipped."""
    return list(_events([*raw.replace("\r\n", "\n").split("\n"), ""]))


def _events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip():
            if name:
                yield name, json.loads("\n".join(data))
            name, data = None, []
