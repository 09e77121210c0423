"""Readers' verdicts on answers in the shared database: thumbs up or down, with an optional comment.

A verdict names its answer — a conversation's answer by its message id, or a kept `/ask` answer
(`asked.py`) — and its rater (`person:<id>`, `key:<digest>`, or `open` on a service without keys):
one verdict per answer and rater, a second replacing the first. An answer is found only where it
can be read: in its space and, for a person's conversation or question, by that person alone
(admins included), exactly as reading it; anything else is `NotFound`, as if it did not exist. A
question (a `user` message) is not an answer: `NotFound` too. Deleting a conversation deletes its
verdicts with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from docassist.pipelines.conversations.asked import AskedAnswers, could_be_id
from docassist.pipelines.errors import NotFound, shown
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import answer_feedback, asked_answers, conversations, messages

Rating = Literal["up", "down"]
Source = Literal["conversation", "ask"]
RATINGS: tuple[Rating, ...] = ("up", "down")


@dataclass(frozen=True)
class Verdict:
    rating: Rating
    comment: str | None
    created_at: float
    source: Source
    space_id: str
    answer_id: str  # the message's id, or the kept /ask answer's
    conversation_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class RatedAnswer:
    """A verdict with the question and answer it judged: one line of `docassist eval feedback`."""

    source: Source
    space_id: str
    question: str
    answer: str
    citations: list[dict[str, Any]]
    language: str | None
    grounded: bool | None
    rating: Rating
    comment: str | None
    created_at: float
    answer_id: str
    conversation_id: str | None
    request_id: str | None


class FeedbackStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.asked = AskedAnswers(db)

    def rate(self, verdict: Verdict, owner: str | None, rater: str) -> Verdict:
        """Keep `verdict` as `rater`'s on the answer it names — a conversation's (`answer_id`, the
        message, in `conversation_id`) or an `/ask` answer (`request_id`; its `answer_id` filled
        in) — and return it; `NotFound` for an answer `owner` cannot read."""
        try:
            return self._rate(verdict, owner, rater)
        except IntegrityError:  # the rater's verdict on it landed meanwhile: now it is replaced
            return self._rate(verdict, owner, rater)

    def _rate(self, verdict: Verdict, owner: str | None, rater: str) -> Verdict:
        with self.db.begin() as conn:
            kept = replace(verdict, answer_id=self._answer(conn, verdict, owner))
            values = {
                "rating": kept.rating,
                "comment": kept.comment,
                "created_at": kept.created_at,
                "source": kept.source,
                "space_id": kept.space_id,
                "conversation_id": kept.conversation_id,
            }
            f = answer_feedback.c
            theirs = (f.answer_id == kept.answer_id, f.rater == rater)
            if not conn.execute(update(answer_feedback).where(*theirs).values(values)).rowcount:
                conn.execute(insert(answer_feedback).values(answer_id=kept.answer_id, rater=rater, **values))
        return kept

    def _answer(self, conn: Connection, verdict: Verdict, owner: str | None) -> str:
        """The id of the answer `verdict` names, where `owner` may read it."""
        space_id = verdict.space_id
        if verdict.source == "ask":
            return self.asked.find(conn, space_id, verdict.request_id or "", owner)
        m, c = messages.c, conversations.c
        conversation_id = verdict.conversation_id or ""
        found = None
        if could_be_id(verdict.answer_id) and could_be_id(conversation_id):
            found = conn.execute(
                select(m.message_id)
                .join(conversations, c.conversation_id == m.conversation_id)
                .where(
                    m.message_id == verdict.answer_id,
                    m.conversation_id == conversation_id,
                    m.space_id == space_id,
                    c.space_id == space_id,
                    m.role == "assistant",
                    c.owner.is_(None) if owner is None else c.owner == owner,
                )
            ).scalar()
        if found is None:
            raise NotFound(
                f"no answer {shown(verdict.answer_id)} in conversation {shown(conversation_id)} of space {space_id!r}",
                space_id=space_id,
            )
        return found

    def mine(self, space_id: str, answer_ids: Iterable[str], rater: str) -> dict[str, Verdict]:
        """The rater's verdicts on these answers of the space, by answer id."""
        ids = list(answer_ids)
        if not ids:
            return {}
        f = answer_feedback.c
        with self.db.begin() as conn:
            rows = conn.execute(
                select(answer_feedback).where(f.space_id == space_id, f.rater == rater, f.answer_id.in_(ids))
            ).all()
        return {r.answer_id: _verdict(r) for r in rows}

    def export(self, space_id: str | None = None) -> Iterator[RatedAnswer]:
        """Every verdict (of one space, or all), oldest first, with what it judged."""
        with self.db.begin() as conn:
            rated = [*self._conversation_answers(conn, space_id), *self._asked_answers(conn, space_id)]
        yield from sorted(rated, key=lambda r: (r.created_at, r.answer_id))

    def _conversation_answers(self, conn: Connection, space_id: str | None) -> list[RatedAnswer]:
        f, a = answer_feedback.c, messages.c
        q = messages.alias("question")
        query = (
            select(answer_feedback, a.text, a.citations, a.language, a.grounded, q.c.text.label("question"))
            .join(messages, a.message_id == f.answer_id)
            .outerjoin(q, (q.c.conversation_id == a.conversation_id) & (q.c.position == a.position - 1))
            .where(f.source == "conversation")
        )
        if space_id is not None:
            query = query.where(f.space_id == space_id)
        return [_rated(r, r.question or "", r.text, r.citations, r.language, r.grounded) for r in conn.execute(query)]

    def _asked_answers(self, conn: Connection, space_id: str | None) -> list[RatedAnswer]:
        f, a = answer_feedback.c, asked_answers.c
        query = (
            select(answer_feedback, a.question, a.answer, a.citations, a.language, a.grounded, a.request_id)
            .join(asked_answers, a.answer_id == f.answer_id)
            .where(f.source == "ask")
        )
        if space_id is not None:
            query = query.where(f.space_id == space_id)
        return [
            _rated(r, r.question, r.answer, r.citations, r.language, r.grounded, r.request_id)
            for r in conn.execute(query)
        ]


def _verdict(row: Any) -> Verdict:
    return Verdict(
        row.rating, row.comment, row.created_at, row.source, row.space_id, row.answer_id, row.conversation_id
    )


def _rated(
    row: Any,
    question: str,
    answer: str,
    citations: str | None,
    language: str | None,
    grounded: int | None,
    request_id: str | None = None,
) -> RatedAnswer:
    return RatedAnswer(
        source=row.source,
        space_id=row.space_id,
        question=question,
        answer=answer,
        citations=json.loads(citations or "[]"),
        language=language,
        grounded=None if grounded is None else bool(grounded),
        rating=row.rating,
        comment=row.comment,
        created_at=row.created_at,
        answer_id=row.answer_id,
        conversation_id=row.conversation_id,
        request_id=request_id,
    )
