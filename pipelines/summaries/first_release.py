"""The one data migration Alembic cannot make: summaries of the first release were cached under
keys that did not name their space. At start they are moved to the space-scoped keys the
service computes now, when they were made with the configuration in force now (models, windows,
prompts, output limits); the rest are left to be recomputed."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from docassist.pipelines.llm.prompts import prompt_version
from docassist.pipelines.logs import event

if TYPE_CHECKING:
    from docassist.pipelines.summaries.jobs.store import JobStore
    from docassist.pipelines.summaries.runs.service import SummaryService
    from docassist.pipelines.summaries.runs.store import SummaryStore


def adopt_first_release(service: SummaryService, summaries: SummaryStore, jobs: JobStore) -> int:
    """Move summaries and partial results stored under first-release keys (which did not name
    the space) to their space-scoped keys, when they were made with the configuration in force
    now: those of the legacy summary rows and of the unfinished jobs. The rows moved."""
    languages = [(space, doc, lang) for _, space, doc, lang in summaries.legacy_rows()]
    languages += [(j.space_id, j.doc_id, j.language) for j in jobs.unfinished()]
    moved = 0
    for space_id, doc_id, language in set(languages):
        record = service.registry.get(space_id, doc_id)
        if record is None:
            continue
        parts = [
            service.content_hash(record),
            service.map_ep.settings.model,
            service.reduce_ep.settings.model,
            str(service.reduce_ep.spec.context_window),
            prompt_version(),
            language,
            str(service.max_output),
        ]
        legacy = hashlib.sha256("|".join(parts).encode()).hexdigest()
        moved += summaries.adopt(legacy, service.run_of(record, language))
    if moved:
        event("[SUMMARY] Re-keyed first-release summaries and partial results", f"{moved} rows")
    return moved
