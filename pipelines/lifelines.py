"""No process of docassist outlives the one that started it.

A process whose parent dies is adopted by another (init, or a subreaper), so its parent pid
changes: `watch_parent` polls for that in a daemon thread and acts at once. It needs no signal
set up by the parent and works whichever thread started the child — unlike Linux's
parent-death signal, which fires when the *thread* that forked exits.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

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
