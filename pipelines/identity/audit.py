"""The audit trail: who did what, in which space, to which document or conversation, from which
address, in which request — append-only in the shared database. Nothing updates or deletes an
entry except the retention (`AUDIT_RETENTION_DAYS`), which removes whole days at the old end.

An entry never holds a password or a token, and a question at most `QUESTION_CHARS` of it.
Reads come in pages, newest first, by a keyset cursor (the last entry's id), so a page is
stable while entries are added.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal, get_args

from sqlalchemy import Connection, delete, insert, select

from docassist.pipelines.errors import InvalidInput
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import audit

Action = Literal[
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "token_created",
    "token_revoked",
    "upload",
    "new_version",
    "delete",
    "tag",
    "sync",
    "search",
    "ask",
    "summarize",
    "conversation_deleted",
    "feedback",
    "access_denied",
]
ACTIONS: tuple[str, ...] = get_args(Action)
QUESTION_CHARS = 200
MAX_PAGE = 500
EXPORT_BATCH = 1000


@dataclass(frozen=True)
class AuditEntry:
    action: Action
    at: float = 0.0  # set when recorded
    user_id: str | None = None  # the person; None for an API key (then key_id) or an open service
    user_name: str | None = None
    key_id: str | None = None  # the API key's digest prefix, never the key
    space_id: str | None = None
    doc_id: str | None = None
    conversation_id: str | None = None
    route: str | None = None  # "POST /ingest"
    client: str | None = None  # the client's address
    request_id: str | None = None
    detail: str | None = None  # a question (cut), a filename, a reason: never a secret
    entry_id: int | None = None


@dataclass(frozen=True)
class AuditFilter:
    spaces: frozenset[str] | None = None  # None: every space (and entries without one)
    space_id: str | None = None
    user: str | None = None  # a person id or name, or a key id
    action: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def question(text: str) -> str:
    return text if len(text) <= QUESTION_CHARS else text[:QUESTION_CHARS] + "…"


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, entry: AuditEntry, conn: Connection | None = None) -> None:
        """Append `entry`; in `conn`'s transaction if given (with the change it records)."""
        values = asdict(entry)
        values.pop("entry_id")
        values["at"] = entry.at or time.time()
        values = {k: (v[:2000] if isinstance(v, str) else v) for k, v in values.items()}
        with self.db.within(conn) as conn:
            conn.execute(insert(audit).values(values))

    def page(self, where: AuditFilter, limit: int, cursor: str | None) -> AuditPage:
        if where.action is not None and where.action not in ACTIONS:
            raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}")
        query = self._select(where).order_by(audit.c.entry_id.desc()).limit(limit + 1)
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 20:
                raise InvalidInput("cursor is not one this listing gave")
            query = query.where(audit.c.entry_id < int(cursor))
        with self.db.begin() as conn:
            rows = conn.execute(query).all()
        entries = [_entry(r) for r in rows[:limit]]
        more = len(rows) > limit and entries
        return AuditPage(entries, str(entries[-1].entry_id) if more else None)

    def export(self, since: float | None = None, until: float | None = None) -> Iterator[str]:
        """Every entry in the window, oldest first, as JSON lines (for a SIEM)."""
        after = 0
        where = AuditFilter(since=since, until=until)
        while True:
            query = self._select(where).where(audit.c.entry_id > after).order_by(audit.c.entry_id).limit(EXPORT_BATCH)
            with self.db.begin() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield json.dumps(asdict(_entry(row)), ensure_ascii=False)
            if len(rows) < EXPORT_BATCH:
                return
            after = rows[-1].entry_id

    def prune(self, retention_days: int) -> int:
        """Entries older than the retention; the count removed."""
        cutoff = time.time() - retention_days * 86400
        with self.db.begin() as conn:
            return conn.execute(delete(audit).where(audit.c.at < cutoff)).rowcount

    @staticmethod
    def _select(where: AuditFilter):
        c = audit.c
        query = select(audit)
        if where.spaces is not None:
            query = query.where(c.space_id.in_(sorted(where.spaces)))
        if where.space_id is not None:
            query = query.where(c.space_id == where.space_id)
        if where.user is not None:
            query = query.where((c.user_id == where.user) | (c.user_name == where.user) | (c.key_id == where.user))
        if where.action is not None:
            query = query.where(c.action == where.action)
        if where.since is not None:
            query = query.where(c.at >= where.since)
        if where.until is not None:
            query = query.where(c.at < where.until)
        return query


def _entry(row) -> AuditEntry:
    return AuditEntry(**{k: v for k, v in row._asdict().items()})
