"""The extraction workers' own side: how each starts (memory cap, lower priority, an exit with its
service) and what it loads before the first upload."""

from __future__ import annotations

import os
import resource

from docassist.pipelines.lifelines import watch_parent
from docassist.pipelines.priorities import BULK_NICE


def start_worker(megabytes: int, parent: int) -> None:
    """In each worker, first: the memory cap, a lower CPU priority than the service's (reading a
    file yields the cores to searches and answers), and an exit the moment `parent` is gone."""
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.nice(BULK_NICE)
    watch_parent(parent)


def warm() -> bool:
    import docx  # noqa: F401 - load the parsers once per worker
    import lxml.html  # noqa: F401
    import pypdf  # noqa: F401
    import pypdfium2  # noqa: F401

    return True
