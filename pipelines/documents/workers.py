"""The extraction workers' own side: how each starts (memory cap, lower priority, an exit with its
service), what it loads before the first upload, and the strays an earlier service left behind."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from pathlib import Path

from docassist.pipelines.lifelines import watch_parent

WORKER_NICE = 10


def start_worker(megabytes: int, parent: int) -> None:
    """In each worker, first: the memory cap, a lower CPU priority than the service's (reading a
    file yields the cores to searches and answers), and an exit the moment `parent` is gone."""
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.nice(WORKER_NICE)
    watch_parent(parent)


def kill_strays(pid_file: Path) -> list[int]:
    """Kill the extraction workers (and resource tracker) an earlier process recorded in
    `pid_file` and left running; the pids killed."""
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


def warm() -> bool:
    import docx  # noqa: F401 - load the parsers once per worker
    import lxml.html  # noqa: F401
    import pypdf  # noqa: F401
    import pypdfium2  # noqa: F401

    return True
