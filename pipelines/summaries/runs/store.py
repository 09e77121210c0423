"""Finished summaries and the partial results of runs, in the shared database.

- `summaries`: by cache key (space, text, models and windows, prompts, language, limits): a
  restart loses none, and every backend serves the ones any backend computed.
- `partials`: every map/reduce output of a run, by its run key and exact input, so a run that
  was interrupted — a restart, a worker that died — resumes where it stopped.

A summary is written only while its document still exists, in the same transaction that
checks it: a document deleted during its run leaves nothing behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import and_, delete, exists, insert, select, update

from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import documents, partials, summaries
from docassist.pipelines.summaries.events import Strategy, SummarySentence, Usage


@dataclass
class CachedSummary:
    summary: str
    language: str
    strategy: Strategy
    usage: Usage
    timing: dict[str, Any]  # what `complete` reports as the run's timing
    created_at: float
    parts: int = 1  # of the plan carried out: what a cached `start` announces
    sentences: list[SummarySentence] | None = None  # None: not yet tied to its passages


@dataclass(frozen=True)
class RunOf:
    """What a run computes: the cache key it fills, and the document it is for."""

    key: str
    space_id: str
    doc_id: str
    text_sha256: str


_SENTENCES = TypeAdapter(list[SummarySentence])


def _sentences_json(sentences: list[SummarySentence]) -> str:
    return _SENTENCES.dump_json(sentences).decode()


class SummaryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # summaries
    def get(self, key: str) -> CachedSummary | None:
        names = ("summary", "language", "strategy", "usage", "timing", "created_at", "sentences")
        with self.db.begin() as conn:
            row = conn.execute(select(*[summaries.c[n] for n in names]).where(summaries.c.cache_key == key)).first()
        if row is None:
            return None
        summary, language, strategy, usage, timing_json, created, sentences = row
        timing = json.loads(timing_json)  # the plan's figures are kept among the run's timing
        return CachedSummary(
            summary, language, strategy, Usage.model_validate_json(usage), timing, created, timing.get("parts", 1),
            None if sentences is None else _SENTENCES.validate_json(sentences),
        )  # fmt: skip

    def put_sentences(self, key: str, sentences: list[SummarySentence]) -> None:
        """Tie a stored summary's sentences to their passages (one written where none could be)."""
        with self.db.begin() as conn:
            conn.execute(
                update(summaries).where(summaries.c.cache_key == key).values(sentences=_sentences_json(sentences))
            )

    def existing(self, keys: list[str]) -> set[str]:
        """Which of `keys` have a summary."""
        found: set[str] = set()
        with self.db.begin() as conn:
            for i in range(0, len(keys), 500):
                found |= set(
                    conn.execute(
                        select(summaries.c.cache_key).where(summaries.c.cache_key.in_(keys[i : i + 500]))
                    ).scalars()
                )
        return found

    def put_if_document_exists(self, run: RunOf, value: CachedSummary) -> bool:
        """Store the summary and drop the run's partial results, unless the document is gone."""
        alive = exists().where(
            documents.c.space_id == run.space_id, documents.c.doc_id == run.doc_id, documents.c.state == "ready"
        )
        with self.db.begin() as conn:
            if not conn.execute(select(alive)).scalar():
                return False
            conn.execute(delete(summaries).where(summaries.c.cache_key == run.key))
            conn.execute(
                insert(summaries).values(
                    cache_key=run.key,
                    space_id=run.space_id,
                    doc_id=run.doc_id,
                    text_sha256=run.text_sha256,
                    language=value.language,
                    summary=value.summary,
                    strategy=value.strategy,
                    usage=value.usage.model_dump_json(),
                    timing=json.dumps(value.timing),
                    created_at=value.created_at,
                    sentences=None if value.sentences is None else _sentences_json(value.sentences),
                )
            )
            conn.execute(delete(partials).where(partials.c.run_key == run.key))
        return True

    # partials
    def get_partial(self, run_key: str, node_key: str) -> tuple[str, int, int] | None:
        query = select(partials.c.text, partials.c.prompt_tokens, partials.c.completion_tokens).where(
            partials.c.run_key == run_key, partials.c.node_key == node_key
        )
        with self.db.begin() as conn:
            row = conn.execute(query).first()
        return (row[0], row[1], row[2]) if row else None

    def put_partial(self, run: RunOf, node_key: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(partials).where(partials.c.run_key == run.key, partials.c.node_key == node_key))
            conn.execute(
                insert(partials).values(
                    run_key=run.key,
                    node_key=node_key,
                    space_id=run.space_id,
                    doc_id=run.doc_id,
                    text=text,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    created_at=time.time(),
                )
            )

    def drop_partials(self, run_key: str) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(partials).where(partials.c.run_key == run_key))

    # a deleted document
    def forget_document(self, space_id: str, doc_id: str, text_sha256: str | None, last_of_its_text: bool) -> None:
        """Drop what a deleted document leaves: its partial results, and its space's summaries of
        its text unless another document of the space has the same text."""
        with self.db.begin() as conn:
            conn.execute(delete(partials).where(partials.c.space_id == space_id, partials.c.doc_id == doc_id))
            conn.execute(
                delete(summaries).where(
                    summaries.c.space_id == space_id, summaries.c.doc_id == doc_id, summaries.c.text_sha256.is_(None)
                )
            )
            if text_sha256 and last_of_its_text:
                conn.execute(
                    delete(summaries).where(summaries.c.space_id == space_id, summaries.c.text_sha256 == text_sha256)
                )

    # a database of the first release
    def adopt(self, legacy_key: str, run: RunOf) -> int:
        """Re-key a summary and the partial results stored under a first-release key (which left
        out the space) to the space-scoped key; returns the rows moved."""
        with self.db.begin() as conn:
            moved = conn.execute(
                update(summaries)
                .where(and_(summaries.c.cache_key == legacy_key, summaries.c.space_id == run.space_id))
                .values(cache_key=run.key, text_sha256=run.text_sha256)
            ).rowcount
            moved += conn.execute(
                update(partials)
                .where(partials.c.run_key == legacy_key)
                .values(run_key=run.key, space_id=run.space_id, doc_id=run.doc_id)
            ).rowcount
        return moved

    def legacy_rows(self) -> list[tuple[str, str, str, str]]:
        """(cache key, space, document, language) of summaries stored before keys named the space."""
        query = select(summaries.c.cache_key, summaries.c.space_id, summaries.c.doc_id, summaries.c.language).where(
            summaries.c.text_sha256.is_(None)
        )
        with self.db.begin() as conn:
            return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]
