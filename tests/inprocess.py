"""The service in the test process: `create_app(settings, assistant=…)` over a runtime started
here, served by a real uvicorn (the protocol `docassist serve` gives it) on an event loop of
its own in a thread. No process to start and no imports to pay per service; the parts are the
real ones — the llama.cpp server the runtime starts (or the one `LLAMA_SERVER_URL` names),
Qdrant Edge on disk, the embedding model, the extraction sandbox. Tests talk HTTP to it as to
a `docassist serve`, and read its log in its own file.

What a process-level test needs — the service's pid and memory, its children dying with it, a
start refused or a signal — still starts `docassist serve` (`tests.conftest.start_service`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import uvicorn

from docassist.api.app import create_app
from docassist.api.connections import uvicorn_options
from docassist.bench.service import Reachable, proc_status, service_env
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.llm.llama_server import free_port
from docassist.pipelines.logs import configure_logging
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.settings import Settings, load_settings

T = TypeVar("T")
START_TIMEOUT_S = 300


class LoopThread:
    """One event loop, run forever by a daemon thread: the loop every in-process service of the
    session lives on, so a runtime's tasks, queues and locks stay on the loop they were made on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="inprocess-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class LogFiles(logging.Handler):
    """docassist's logger is the process's: the service started last (and not yet stopped) takes
    its records, in its own file and format; a stopped service's file is closed and never
    written again, whichever order the services stop in."""

    def __init__(self) -> None:
        super().__init__()
        self._files: list[tuple[TextIO, logging.Handler]] = []

    def enter(self, fmt: str, stream: TextIO) -> None:
        configure_logging(fmt, stream=stream)  # the service's own handler: its format and filters
        logger = logging.getLogger("docassist")
        self._files.append((stream, logger.handlers[0]))
        logger.handlers[:] = [self]

    def leave(self, stream: TextIO) -> None:
        self._files = [(s, h) for s, h in self._files if s is not stream]
        stream.close()

    def emit(self, record: logging.LogRecord) -> None:
        if self._files:
            self._files[-1][1].handle(record)


_LOGS = LogFiles()
_loop: LoopThread | None = None


def session_loop() -> LoopThread:
    global _loop
    if _loop is None:
        _loop = LoopThread()
    return _loop


@dataclass
class InProcessService(Reachable):
    """What a test reads of a service (as `bench.service.Service`): its URL, data directory, log
    and events — and, in-process, its settings and Assistant."""

    url: str
    data_dir: Path
    log_path: Path
    settings: Settings
    assistant: Assistant
    _server: uvicorn.Server
    _serving: Any
    _log: TextIO
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> Runtime:
        return self.assistant.runtime

    @property
    def pid(self) -> int:
        return os.getpid()

    def rss_kb(self) -> int:
        return proc_status(self.pid, "VmRSS")

    @property
    def llama_url(self) -> str:
        """The llama.cpp server the service calls, ".../v1": other services of the session may share it."""
        return self.config["endpoints"][self.config["endpoint"]]["base_url"]

    @property
    def llama_env(self) -> dict[str, str]:
        """The environment that points another service at this one's llama.cpp server."""
        return {"LLAMA_SERVER_URL": self.llama_url, "LLAMA_SERVER_API_KEY": self.llama_key}

    def stop(self) -> None:
        loop = session_loop()
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            self._serving.result(30)
        loop.run(self.runtime.stop(), timeout=60)
        _LOGS.leave(self._log)


def _serve(app: Any, settings: Settings, port: int | None = None) -> tuple[str, uvicorn.Server, Any]:
    """`app` served by uvicorn on the session's loop, as `docassist serve` runs it: its URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **uvicorn_options(settings.keep_alive_s)
    )
    server = uvicorn.Server(config)
    serving = asyncio.run_coroutine_threadsafe(server.serve(), session_loop().loop)
    deadline = time.monotonic() + 30
    while not server.started:
        if serving.done() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start in-process: {serving.exception() if serving.done() else ''}")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, serving


def start_in_process(workdir: Path, port: int | None = None, **env: str) -> InProcessService:
    """As `start_service(workdir, **env)`: a started runtime on `workdir/data` (or `DATA_DIR`) with
    the embedded default's environment and `env` on top, served on `port` (a free one by default:
    a test that must name its URL beforehand, as `PUBLIC_URL`, picks it). With `LLAMA_SERVER_URL`
    (a test's `llama_env`), no llama.cpp server of its own."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(service_env(Path(env.pop("DATA_DIR", workdir / "data")), **env))
    log_path = workdir / "serve.log"
    log = log_path.open("a", encoding="utf-8", buffering=1)
    _LOGS.enter(settings.log_format, log)
    runtime = Runtime(settings)
    assistant = Assistant(runtime)
    app = create_app(settings, assistant=assistant)
    session_loop().run(runtime.start(), timeout=START_TIMEOUT_S)
    try:
        url, server, serving = _serve(app, settings, port)
    except RuntimeError:
        session_loop().run(runtime.stop(), timeout=60)
        raise
    service = InProcessService(url, settings.data_dir, log_path, settings, assistant, server, serving, log)
    service.config = _model_config(service)
    return service


def _model_config(service: InProcessService) -> dict[str, Any]:
    """What `/model-config` says, as the process harness reads it (none behind keys)."""
    if service.settings.api_keys:
        return {}
    with service.client() as http:
        cfg = http.get("/model-config")
        return cfg.json() if cfg.status_code == 200 else {}


@contextlib.contextmanager
def in_process(workdir: Path, **env: str) -> Iterator[InProcessService]:
    service = start_in_process(workdir, **env)
    try:
        yield service
    finally:
        service.stop()
