"""`/ask` answers kept by the request id they were answered in, so a reader can rate one afterwards:
a conversation keeps its answers anyway, a one-off question keeps nothing else.

A kept answer belongs to its space and to the person who asked (None: asked with an API key, or on
an open service — then whoever reaches the space without a person may rate it, as conversations
made with keys are read). A client may choose its `X-Request-ID`, so two answers may share one:
the newest of the space (and asker) is the one rated. An answer nobody rated within `KEEP_DAYS`
is removed (checked at most hourly, as answers are kept): what stays for good is what a verdict
names, the material `docassist eval feedback` exports.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from pydantic import TypeAdapter
from sqlalchemy import Connection, delete, insert, select

from docassist.pipelines.answers.citations import Citation
from docassist.pipelines.errors import NotFound, shown
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import answer_feedback, asked_answers

KEEP_DAYS = 30
PRUNE_EVERY_S = 3600.0
_CITATIONS = TypeAdapter(list[Citation])


@dataclass(frozen=True)
class AskedAnswer:
    request_id: str
    space_id: str
    owner: str | None
    question: str
    answer: str
    language: str | None
    grounded: bool
    citations: list[Citation]
    answer_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)


def could_be_id(value: str) -> bool:
    """An id the tables could hold: 1-64 characters, no NUL (which PostgreSQL refuses in a query)."""
    return 0 < len(value) <= 64 and "\x00" not in value


class AskedAnswers:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pruned_at = 0.0

    def keep(self, asked: AskedAnswer) -> None:
        citations = json.dumps(_CITATIONS.dump_python(asked.citations, mode="json"), ensure_ascii=False)
        with self.db.begin() as conn:
            conn.execute(
                insert(asked_answers).values(
                    answer_id=asked.answer_id,
                    request_id=asked.request_id,
                    space_id=asked.space_id,
                    owner=asked.owner,
                    question=asked.question,
                    answer=asked.answer,
                    language=asked.language,
                    grounded=int(asked.grounded),
                    citations=citations,
                    created_at=asked.created_at,
                )
            )
        if asked.created_at - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = asked.created_at
            self.prune(asked.created_at)

    def prune(self, now: float) -> int:
        """Answers older than `KEEP_DAYS` that nobody rated; the count removed."""
        rated = select(answer_feedback.c.answer_id).where(answer_feedback.c.source == "ask")
        old = asked_answers.c.created_at < now - KEEP_DAYS * 86400
        with self.db.begin() as conn:
            return conn.execute(delete(asked_answers).where(old, asked_answers.c.answer_id.not_in(rated))).rowcount

    def find(self, conn: Connection, space_id: str, request_id: str, owner: str | None) -> str:
        """The id of the newest answer given in request `request_id` in the space to `owner`;
        `NotFound` for any other space or asker, as for none."""
        a = asked_answers.c
        mine = a.owner.is_(None) if owner is None else a.owner == owner
        found = None
        if could_be_id(request_id):
            found = conn.execute(
                select(a.answer_id)
                .where(a.space_id == space_id, a.request_id == request_id, mine)
                .order_by(a.created_at.desc())
                .limit(1)
            ).scalar()
        if found is None:
            raise NotFound(f"no answer of request {shown(request_id)} in space {space_id!r}", space_id=space_id)
        return found
