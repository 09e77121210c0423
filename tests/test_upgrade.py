"""A data directory made by the first release upgrades without loss: its SQLite database (no
migration history) is stamped and migrated, the texts and originals it kept as files move into
the database, and its cached summaries are still served once re-keyed to their space."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from tests.inprocess import start_in_process

# The first release's schema, verbatim.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE documents (space_id TEXT NOT NULL, doc_id TEXT NOT NULL, filename TEXT NOT NULL, ext TEXT NOT NULL,
    language TEXT NOT NULL, chunks INTEGER NOT NULL, tokens INTEGER NOT NULL, chars INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL, created_at REAL NOT NULL, state TEXT NOT NULL, text_sha256 TEXT,
    PRIMARY KEY (space_id, doc_id));
CREATE TABLE summaries (cache_key TEXT PRIMARY KEY, space_id TEXT NOT NULL, doc_id TEXT NOT NULL,
    language TEXT NOT NULL, summary TEXT NOT NULL, strategy TEXT NOT NULL, usage TEXT NOT NULL, timing TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE INDEX summaries_doc ON summaries (space_id, doc_id);
CREATE TABLE partials (run_key TEXT NOT NULL, node_key TEXT NOT NULL, text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, PRIMARY KEY (run_key, node_key));
CREATE TABLE jobs (job_id TEXT PRIMARY KEY, space_id TEXT NOT NULL, doc_id TEXT NOT NULL, language TEXT NOT NULL,
    status TEXT NOT NULL, progress TEXT NOT NULL, error TEXT, retryable INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX jobs_doc ON jobs (space_id, doc_id);
"""
TEXT = "Байкал — самое глубокое озеро планеты. Из него вытекает Ангара."
SUMMARY = "В тексте говорится о том, что Байкал — глубочайшее озеро."


def first_release_key(text_sha: str, language: str) -> str:
    """The first release's cache key on the embedded default (no space in it)."""
    parts = [text_sha, "gemma-3-270m-q4_k_m", "gemma-3-270m-q4_k_m", "8192", "v1", language, "512"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def make_first_release_data_dir(data_dir: Path) -> str:
    doc_id = "a" * 32
    text_sha = hashlib.sha256(TEXT.encode()).hexdigest()
    folder = data_dir / "files" / "old" / doc_id
    folder.mkdir(parents=True)
    (folder / "text.txt").write_text(TEXT, encoding="utf-8")
    (folder / "original.txt").write_bytes(TEXT.encode())
    now = time.time()
    with sqlite3.connect(data_dir / "docassist.sqlite3") as conn:
        conn.executescript(FIRST_RELEASE_SCHEMA)
        conn.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            ("old", doc_id, "baikal.txt", ".txt", "ru", 1, 20, len(TEXT), len(TEXT.encode()), now, "ready", text_sha),
        )
        usage = {"prompt_tokens": 90, "completion_tokens": 14, "tokens_per_second": 50.0, "llm_calls": 1}
        conn.execute(
            "INSERT INTO summaries VALUES (?,?,?,?,?,?,?,?,?)",
            (
                first_release_key(text_sha, "ru"),
                "old",
                doc_id,
                "ru",
                SUMMARY,
                "direct",
                json.dumps(usage),
                json.dumps({"total_s": 1.2, "parts": 1}),
                now,
            ),
        )
        conn.execute(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            ("j" * 32, "old", doc_id, "ru", "done", json.dumps({"stage": "done"}), None, 0, 1, now, now),
        )
    return doc_id


def test_a_first_release_data_dir_upgrades_without_loss(tmp_path: Path, llama_env: dict[str, str]):
    data_dir = tmp_path / "data"
    doc_id = make_first_release_data_dir(data_dir)
    svc = start_in_process(tmp_path / "run", DATA_DIR=str(data_dir), **llama_env)
    try:
        with svc.client() as c:
            listed = c.get("/documents", params={"space_id": "old"}).json()["documents"]
            assert [d["doc_id"] for d in listed] == [doc_id] and listed[0]["summary_status"] == "done"
            assert c.get(f"/documents/{doc_id}/text", params={"space_id": "old"}).text == TEXT
            cached = c.post("/summarize", json={"doc_id": doc_id, "space_id": "old"}).json()
            assert cached["cached"] is True and cached["summary"] == SUMMARY
            assert c.get(f"/jobs/{'j' * 32}").json()["status"] == "done"
        log = svc.log()
        assert "Stamped a first-release database as revision 0001" in log and "Migrated" in log
        assert "Re-keyed first-release summaries" in log
    finally:
        svc.stop()
    with sqlite3.connect(data_dir / "docassist.sqlite3") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0010"
