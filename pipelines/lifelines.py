"""No process of docassist outlives the one that started it.

A process whose parent dies is adopted by another (init, or a subreaper), so its parent pid
changes: `watch_parent` polls for that in a daemon thread and acts at once. It needs no signal
set up by the parent and works whichever thread started the child — unlike Linux's
parent-death signal, which fires when the *thread* that forked exits. A child that cannot watch
(stopped, say) is killed by the next start, from the pids its service recorded (`kill_strays`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

CHECK_S = 0.5


def watch_parent(parent: int, on_gone: Callable[[], None] | None = None) -> None:
    """Call `on_gone` (default: exit at once) as soon as `parent` is no longer this process's parent."""
    act = on_gone or (lambda: os._exit(0))
    if os.getppid() != parent:
        act()
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(CHECK_S)
        act()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def kill_strays(pid_file: Path) -> list[int]:
    """Kill the children (extraction workers, their resource tracker, the embedder process) an
    earlier service recorded in `pid_file` and left running — one that could not watch its parent
    (stopped, say); the pids killed."""
    try:
        owner, *pids = (int(p) for p in pid_file.read_text().split())
    except (OSError, ValueError):
        return []
    if owner != os.getpid() and Path(f"/proc/{owner}").exists():
        return []  # its service still runs
    killed = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in cmdline:  # spawn_main or the resource tracker, not a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    with contextlib.suppress(OSError):
        pid_file.unlink()
    return killed
