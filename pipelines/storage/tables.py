"""The database schema as it stands (the head of `migrations/`): SQLAlchemy Core tables.

- `documents`: one row per document of a space; `writing` until its vectors and content are in
  place, so a crash leaves a row that says what to undo.
- `document_tags`: a document's tags, one row each by its case-folded form (a tag filter is an
  index look-up); the document's row keeps its `title`, and `title_key` (title and filename
  case-folded) for a title search that folds Cyrillic on SQLite too.
- `document_versions`: a replaced document's versions (`PUT /documents/{id}`), each with when it
  came, its bytes' SHA-256 and size, and — once replaced — its text and original; a document never
  replaced has no rows (its version 1 is its `documents` row).
- `document_contents`: each document's extracted text and original bytes, so any backend can
  summarize a document another backend ingested and an index can be rebuilt; for a scanned PDF,
  the words OCR read on each page with their boxes (what marks a quote on its page).
- `summaries`: finished summaries by cache key (space, text, models, prompts, language, limits).
- `partials`: every map/reduce output of a run, by run key and exact input: what lets an
  interrupted run resume.
- `jobs`: pre-computed summary jobs, with the lease of the worker running one.
- `uploads`: upload jobs — stage, progress and outcome of an upload answered with 202; the
  process running one touches `updated_at`, so a row nobody touches has lost its process.
- `conversations` and `messages`: follow-up questions of a space, each message with its role,
  text, the standalone question it was condensed to, and its answer's citations and sources
  (JSON); `position` orders a conversation and, being unique, makes two writers of one turn
  collide rather than interleave; a conversation may keep a `scope` (JSON) its questions read.
  A conversation started by a signed-in person is theirs alone
  (`owner`, their person id); one started with an API key has none.
- `people`: each person who signed in, as the directory or provider last described them (groups
  as JSON), when that was, how many refreshes in a row failed, and for OpenID Connect the grant
  (refresh and access token, JSON) that lets a refresh ask again.
- `sessions`: signed-in browsers, by the SHA-256 of the cookie's random id (the id itself is
  never stored), with their idle and absolute expiry.
- `sign_in_attempts`: OpenID Connect sign-ins between the redirect to the provider and its
  callback (state, nonce, PKCE verifier), by the SHA-256 of the state; used once.
- `personal_tokens`: people's tokens for scripts and tools, by the SHA-256 of the token.
- `audit`: who did what, where, from which address; append-only (only retention removes rows).
- `asked_answers`: `/ask` answers by the request id they were answered in (space, asker, question,
  answer, citations as JSON), so a reader can rate one afterwards; those nobody rated go after 30 days.
- `answer_feedback`: readers' verdicts (`up`/`down`, an optional comment) on a conversation's answer
  (by its message id) or a kept `/ask` answer, one per answer and caller (`rater`: `person:<id>`,
  `key:<digest>`, or `open`).
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
    Column("title", Text),
    Column("title_key", Text, nullable=False, server_default=""),  # title and filename, case-folded
    Column("version", Integer, nullable=False, server_default="1"),
    Column("sha256", String(64)),  # of the uploaded bytes (null: uploaded before it was kept)
    Column("version_at", Float),  # when this version was uploaded (null: at `created_at`)
    PrimaryKeyConstraint("space_id", "doc_id"),
)

document_versions = Table(
    "document_versions",
    metadata,
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("n", Integer, nullable=False),
    Column("filename", Text, nullable=False),
    Column("uploaded_at", Float, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("text", Text),  # null for the current version: its text is in `document_contents`
    Column("original", LargeBinary),
    PrimaryKeyConstraint("space_id", "doc_id", "n"),
)

document_tags = Table(
    "document_tags",
    metadata,
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("tag_key", String(256), nullable=False),  # the tag case-folded: "Finance" and "finance" are one
    Column("tag", Text, nullable=False),  # as it was first written
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("space_id", "doc_id", "tag_key"),
    Index("document_tags_tag", "space_id", "tag_key"),
)

document_contents = Table(
    "document_contents",
    metadata,
    Column("space_id", String(64), nullable=False),
    Column("doc_id", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("original", LargeBinary, nullable=False),
    Column("page_words", Text),  # a scanned PDF's words and their boxes by page (JSON; null: none)
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
    Column("sentences", Text),  # JSON: each sentence with the passage it rests on; NULL: not yet tied
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
    Column("owner", String(512)),  # the person who started it; None: started with an API key
    Column("scope", Text),  # the documents its questions read (JSON); None: the whole space
    Index("conversations_space", "space_id", "created_at"),
    Index("conversations_owner", "space_id", "owner", "created_at"),
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
    Column("support", Text),  # JSON: each answer sentence and the citation it rests on (assistant)
    UniqueConstraint("conversation_id", "position", name="messages_order"),
)

people = Table(
    "people",
    metadata,
    Column("person_id", String(512), primary_key=True),
    Column("source", String(8), nullable=False),
    Column("login", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("groups", Text, nullable=False),  # JSON list
    Column("grant", Text),  # JSON: OpenID Connect refresh / access token
    Column("refreshed_at", Float, nullable=False),
    Column("refresh_failures", Integer, nullable=False, server_default="0"),
    Column("active", Integer, nullable=False, server_default="1"),
    Column("created_at", Float, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("person_id", String(512), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("client", Text),
    Index("sessions_person", "person_id"),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("nonce", Text, nullable=False),
    Column("code_verifier", Text, nullable=False),
    Column("return_to", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

personal_tokens = Table(
    "personal_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("person_id", String(512), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_used_at", Float),
    Index("personal_tokens_person", "person_id"),
)

audit = Table(
    "audit",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("action", String(32), nullable=False),
    Column("user_id", String(512)),
    Column("user_name", Text),
    Column("key_id", String(32)),
    Column("space_id", String(64)),
    Column("doc_id", String(64)),
    Column("conversation_id", String(64)),
    Column("route", Text),
    Column("client", Text),
    Column("request_id", String(64)),
    Column("detail", Text),
    Index("audit_space", "space_id", "at"),
    Index("audit_at", "at"),
)

asked_answers = Table(
    "asked_answers",
    metadata,
    Column("answer_id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=False),  # the X-Request-ID it was answered in
    Column("space_id", String(64), nullable=False),
    Column("owner", String(512)),  # the person who asked; None: an API key, or an open service
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("language", String(8)),
    Column("grounded", Integer),
    Column("citations", Text),  # JSON list of citations
    Column("created_at", Float, nullable=False),
    Index("asked_answers_request", "space_id", "request_id"),
    Index("asked_answers_at", "created_at"),
)

answer_feedback = Table(
    "answer_feedback",
    metadata,
    Column("answer_id", String(64), nullable=False),  # a message's id, or an asked answer's
    Column("rater", String(600), nullable=False),
    Column("source", String(16), nullable=False),  # conversation | ask
    Column("space_id", String(64), nullable=False),
    Column("conversation_id", String(64)),  # a conversation's answer: deleted with it
    Column("rating", String(8), nullable=False),  # up | down
    Column("comment", Text),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("answer_id", "rater"),
    Index("answer_feedback_space", "space_id", "created_at"),
    Index("answer_feedback_conversation", "conversation_id"),
)
