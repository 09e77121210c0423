"""Summaries, partial results and jobs, on disk in SQLite beside the registry.

- `summaries`: finished summaries by cache key (document content, models, prompt version,
  target language, output limit): a restart loses none.
- `partials`: every map/reduce output of a run, keyed by the run and the exact input, so a
  job interrupted by a restart resumes where it stopped instead of starting over.
- `jobs`: pre-computed summary jobs, their status and progress.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from docassist.pipelines.summaries.events import JobProgress, Strategy, Usage

JobStatus = Literal["pending", "running", "done", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS summaries (
    cache_key TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    language TEXT NOT NULL,
    summary TEXT NOT NULL,
    strategy TEXT NOT NULL,
    usage TEXT NOT NULL,
    timing TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS summaries_doc ON summaries (space_id, doc_id);
CREATE TABLE IF NOT EXISTS partials (
    run_key TEXT NOT NULL,
    node_key TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (run_key, node_key)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    space_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    progress TEXT NOT NULL,
    error TEXT,
    retryable INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_doc ON jobs (space_id, doc_id);
"""


@dataclass
class CachedSummary:
    summary: str
    language: str
    strategy: Strategy
    usage: Usage
    timing: dict[str, Any]
    created_at: float


@dataclass
class Job:
    job_id: str
    space_id: str
    doc_id: str
    language: str
    status: JobStatus
    progress: JobProgress = field(default_factory=JobProgress)
    error: dict[str, Any] | None = None
    retryable: bool = False
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0


class SummaryStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # summaries
    def get_summary(self, key: str) -> CachedSummary | None:
        rows = self._q(
            "SELECT summary, language, strategy, usage, timing, created_at FROM summaries WHERE cache_key=?", (key,)
        )
        if not rows:
            return None
        summary, language, strategy, usage, timing, created = rows[0]
        return CachedSummary(summary, language, strategy, Usage.model_validate_json(usage), json.loads(timing), created)

    def put_summary(self, key: str, space_id: str, doc_id: str, value: CachedSummary) -> None:
        self._q(
            "INSERT OR REPLACE INTO summaries VALUES (?,?,?,?,?,?,?,?,?)",
            (
                key,
                space_id,
                doc_id,
                value.language,
                value.summary,
                value.strategy,
                value.usage.model_dump_json(),
                json.dumps(value.timing),
                value.created_at,
            ),
        )

    def has_summary(self, space_id: str, doc_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM summaries WHERE space_id=? AND doc_id=? LIMIT 1", (space_id, doc_id)))

    # partials
    def get_partial(self, run_key: str, node_key: str) -> tuple[str, int, int] | None:
        rows = self._q(
            "SELECT text, prompt_tokens, completion_tokens FROM partials WHERE run_key=? AND node_key=?",
            (run_key, node_key),
        )
        return rows[0] if rows else None

    def put_partial(self, run_key: str, node_key: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        self._q(
            "INSERT OR REPLACE INTO partials VALUES (?,?,?,?,?)",
            (run_key, node_key, text, prompt_tokens, completion_tokens),
        )

    def drop_partials(self, run_key: str) -> None:
        self._q("DELETE FROM partials WHERE run_key=?", (run_key,))

    # jobs
    def create_job(self, space_id: str, doc_id: str, language: str) -> Job:
        now = time.time()
        job = Job(uuid.uuid4().hex, space_id, doc_id, language, "pending", JobProgress(), None, False, 0, now, now)
        self._q(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (job.job_id, space_id, doc_id, language, job.status, job.progress.model_dump_json(), None, 0, 0, now, now),
        )
        return job

    def update_job(self, job_id: str, **changes: Any) -> None:
        if not changes:
            return
        cols, args = [], []
        for key, value in changes.items():
            cols.append(f"{key}=?")
            if isinstance(value, JobProgress):
                value = value.model_dump_json()
            elif key == "error":
                value = json.dumps(value, ensure_ascii=False)
            args.append(value)
        cols.append("updated_at=?")
        args.append(time.time())
        self._q(f"UPDATE jobs SET {', '.join(cols)} WHERE job_id=?", (*args, job_id))

    def _job(self, row: tuple) -> Job:
        job_id, space_id, doc_id, language, status, progress, error, retryable, attempts, created, updated = row
        return Job(
            job_id,
            space_id,
            doc_id,
            language,
            status,
            JobProgress.model_validate_json(progress),
            json.loads(error) if error else None,
            bool(retryable),
            attempts,
            created,
            updated,
        )

    def get_job(self, job_id: str) -> Job | None:
        rows = self._q("SELECT * FROM jobs WHERE job_id=?", (job_id,))
        return self._job(rows[0]) if rows else None

    def latest_job(self, space_id: str, doc_id: str) -> Job | None:
        rows = self._q(
            "SELECT * FROM jobs WHERE space_id=? AND doc_id=? ORDER BY created_at DESC LIMIT 1", (space_id, doc_id)
        )
        return self._job(rows[0]) if rows else None

    def unfinished_jobs(self) -> list[Job]:
        return [
            self._job(r)
            for r in self._q("SELECT * FROM jobs WHERE status IN ('pending','running') ORDER BY created_at")
        ]

    def forget_document(self, space_id: str, doc_id: str) -> None:
        """Drop a deleted document's summaries and jobs."""
        self._q("DELETE FROM summaries WHERE space_id=? AND doc_id=?", (space_id, doc_id))
        self._q("DELETE FROM jobs WHERE space_id=? AND doc_id=?", (space_id, doc_id))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
