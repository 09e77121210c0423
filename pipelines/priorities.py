"""CPU priorities: who waits when the cores are busy. Idle cores go to whoever asks whatever these
say; they only decide the order under contention.

Reads, searches and health run at the default: they are what a person or a load balancer waits on,
and each takes milliseconds. The embedded llama.cpp server runs at `GENERATION_NICE`: generating
an answer or a summary holds both cores for seconds, and a key's answers within its
`ANSWERS_PER_KEY` must not make every other space's reads and searches wait (bench `attacks`);
alone on the machine it runs as fast as before, since idle cores go to whoever asks. Uploads — the
extraction workers, the embedder process, the uploads lane — run at `BULK_NICE`: bulk work that
yields the cores to all of them. (Searches' query embedding at nice 5 was
tried under the 50-client load benchmark: the cheap routes' p99s did not improve and the service
answered 27 % fewer requests, so queries stay at the default.)
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

GENERATION_NICE = 5
BULK_NICE = 10


def lower_this_thread(nice: int) -> None:
    """Give the calling thread — and any threads it starts afterwards, such as an embedding
    engine's OpenMP team, which inherit it — a lower CPU priority. On Linux a thread id names one
    thread, not the process; elsewhere this does nothing."""
    if nice and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
