"""The reader's verdict on an answer: thumbs up or down with an optional comment, on a
conversation's answer or an `/ask` answer, kept with the answer (`feedback_store.py`), counted in
`/metrics` and exported for prompt tuning (`docassist eval feedback`).

`/ask` keeps each answer by its request id as it is given (`asked.py`), so it can be rated
afterwards; a conversation keeps its answers already. Keeping an `/ask` answer never costs the
answer itself: with the database away it is logged and the answer goes out, unrateable.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from docassist.pipelines import metrics
from docassist.pipelines.answers.events import AskComplete
from docassist.pipelines.conversations.asked import AskedAnswer, AskedAnswers
from docassist.pipelines.conversations.feedback_store import RATINGS, FeedbackStore, Rating, Verdict
from docassist.pipelines.errors import DocassistError, InvalidInput
from docassist.pipelines.lanes import Lane
from docassist.pipelines.logs import event
from docassist.pipelines.spaces import check_space_id

MAX_COMMENT_CHARS = 4000
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # line breaks and tabs are a comment's own
T = TypeVar("T")


def check_verdict(rating: str, comment: str | None) -> str | None:
    """The comment as kept (trimmed; blank: none); `InvalidInput` for any other rating or a longer comment."""
    if rating not in RATINGS:
        raise InvalidInput(f"rating must be one of {', '.join(RATINGS)}, not {rating!r}"[:200])
    if comment is None or not comment.strip():
        return None
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT_CHARS:,} characters, not {len(comment):,}")
    if _CONTROL.search(comment) or not _is_text(comment):
        raise InvalidInput("a comment is text: it holds a control character or a lone surrogate")
    return comment.strip()


def _is_text(value: str) -> bool:
    """Text a database and an answer can carry: no lone surrogate (`\\ud800` in the JSON)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Feedback:
    def __init__(self, store: FeedbackStore, lane: Lane) -> None:
        self.store, self.lane = store, lane
        self.asked: AskedAnswers = store.asked

    async def _db(self, fn: Callable[[], T]) -> T:
        return await self.lane.run(fn)

    async def keep_asked(
        self, request_id: str, space_id: str, owner: str | None, question: str, done: AskComplete
    ) -> bool:
        """Keep an `/ask` answer for its verdict; False (logged) when the database would not take it."""
        asked = AskedAnswer(
            request_id, space_id, owner, question, done.answer, done.language, done.grounded, done.citations
        )
        try:
            await self._db(lambda: self.asked.keep(asked))
        except (DocassistError, SQLAlchemyError, UnicodeError) as exc:  # the database away, or refusing the text
            why = exc.message if isinstance(exc, DocassistError) else type(exc).__name__
            event("[FEEDBACK] Answer not kept", f"request {request_id}: {why}", level=logging.WARNING)
            return False
        return True

    async def rate_message(
        self,
        space_id: str,
        conversation_id: str,
        message_id: str,
        owner: str | None,
        rater: str,
        rating: Rating,
        comment: str | None = None,
    ) -> Verdict:
        """`rater`'s verdict on a conversation's answer, replacing their earlier one."""
        return await self._rate(
            Verdict(rating, comment, 0.0, "conversation", space_id, message_id, conversation_id=conversation_id),
            owner,
            rater,
        )

    async def rate_asked(
        self, space_id: str, request_id: str, owner: str | None, rater: str, rating: Rating, comment: str | None = None
    ) -> Verdict:
        """`rater`'s verdict on the `/ask` answer given in request `request_id`, replacing their earlier one."""
        return await self._rate(Verdict(rating, comment, 0.0, "ask", space_id, "", request_id=request_id), owner, rater)

    async def _rate(self, verdict: Verdict, owner: str | None, rater: str) -> Verdict:
        check_space_id(verdict.space_id)
        comment = check_verdict(verdict.rating, verdict.comment)
        verdict = dataclasses.replace(verdict, comment=comment, created_at=time.time())
        kept = await self._db(lambda: self.store.rate(verdict, owner, rater))
        metrics.answer_feedback(kept.rating)
        return kept

    async def mine(self, space_id: str, answer_ids: Iterable[str], rater: str) -> dict[str, Verdict]:
        """The rater's verdicts on these answers, by answer id (what a conversation shows its reader)."""
        ids = list(answer_ids)
        return await self._db(lambda: self.store.mine(space_id, ids, rater)) if ids else {}
