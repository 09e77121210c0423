"""The database schema as it stands (the head of `migrations/`): SQLAlchemy Core tables.

- `documents`: one row per document of a space; `writing` until its vectors and content are in
  place, so a crash leaves a row that says what to undo.
- `document_contents`: each document's extracted text and original bytes, so any backend can
  summarize a document another backend ingested and an index can be rebuilt.
- `summaries`: finished summaries by cache key (space, text, models, prompts, language, limits).
- `partials`: every map/reduce output of a run, by run key and exact input: what lets an
  interrupted run resume.
- `jobs`: pre-computed summary jobs, with the lease of the worker running one.
- `uploads`: upload jobs — stage, progress and outcome of an upload answered with 202; the
  process running one touches `updated_at`, so a row nobody touches has lost its process.
- `conversations` and `messages`: follow-up questions of a space, each message with its role,
  text, the standalone question it was condensed to, and its answer's citations and sources
  (JSON); `position` orders a conversation and, being unique, makes two writers of one turn
  collide rather than interleave.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("filename", Text, nullable=False),
    Column("ext", String(16), nullable=False),
    Column("language", String(8), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("chars", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("text_sha256", String(64)),
    PrimaryKeyConstraint("space_id", "doc_id"),
)

document_contents = Table(
    "document_contents",
    metadata,
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("original", LargeBinary, nullable=False),
    PrimaryKeyConstraint("space_id", "doc_id"),
)

summaries = Table(
    "summaries",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("text_sha256", String(64)),
    Column("language", String(8), nullable=False),
    Column("summary", Text, nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("usage", Text, nullable=False),
    Column("timing", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("summaries_doc", "space_id", "doc_id"),
    Index("summaries_text", "space_id", "text_sha256"),
)

partials = Table(
    "partials",
    metadata,
    Column("run_key", String(64), nullable=False),
    Column("node_key", String(64), nullable=False),
    Column("space_id", String(64)),
    Column("doc_id", String(64)),
    Column("text", Text, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("created_at", Float),
    PrimaryKeyConstraint("run_key", "node_key"),
    Index("partials_doc", "space_id", "doc_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Text, nullable=False),
    Column("error", Text),
    Column("retryable", Integer, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Float),
    Column("queued_at", Float),  # None: the queue did not take it (Redis was down); the reaper retries
    Index("jobs_doc", "space_id", "doc_id"),
    Index("jobs_lease", "status", "lease_expires_at"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("filename", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Text, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("generate_summary", Integer, nullable=False, server_default="0"),
    Column("summary_job_id", String(64)),
    Column("owner", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("uploads_doc", "space_id", "doc_id"),
    Index("uploads_status", "status", "updated_at"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(64), primary_key=True),
    Column("space_id", String(64), nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("conversations_space", "space_id", "created_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("space_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("role", String(16), nullable=False),  # user | assistant
    Column("text", Text, nullable=False),
    Column("standalone_question", Text),  # user messages: what retrieval was given
    Column("language", String(8)),
    Column("grounded", Integer),  # assistant messages
    Column("citations", Text),  # JSON list of citations (assistant)
    Column("sources", Text),  # JSON list of sources (assistant)
    Column("created_at", Float, nullable=False),
    UniqueConstraint("conversation_id", "position", name="messages_order"),
)
