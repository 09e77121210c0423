"""Conversations and their messages in the shared database.

Every read and write names the space: a conversation looked up in another space is not found,
exactly as if it did not exist, so an id is never a capability. A turn — the question and its
answer — is written in one transaction once the answer is complete; an answer that failed
leaves the conversation as it was.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, insert, select, update

from docassist.pipelines.answers.citations import Citation
from docassist.pipelines.errors import NotFound, shown
from docassist.pipelines.search.retrieval import Source
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import conversations, messages

Role = Literal["user", "assistant"]
TITLE_CHARS = 80  # a conversation's title: its first question, cut to this


@dataclass
class Conversation:
    conversation_id: str
    space_id: str
    title: str
    created_at: float
    updated_at: float


@dataclass
class Message:
    message_id: str
    role: Role
    text: str
    created_at: float
    standalone_question: str | None = None  # user messages: what retrieval was given
    language: str | None = None
    grounded: bool | None = None  # assistant messages: the answer's grounding, citations and sources
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)


@dataclass
class Turn:
    """A question and its answer, as they are stored together."""

    question: Message
    answer: Message


def title_of(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _new_id() -> str:
    return uuid.uuid4().hex


def _message(row: Any) -> Message:
    return Message(
        message_id=row.message_id,
        role=row.role,
        text=row.text,
        created_at=row.created_at,
        standalone_question=row.standalone_question,
        language=row.language,
        grounded=None if row.grounded is None else bool(row.grounded),
        citations=[Citation(**c) for c in json.loads(row.citations or "[]")],
        sources=[Source(**s) for s in json.loads(row.sources or "[]")],
    )


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, space_id: str) -> Conversation:
        now = time.time()
        conv = Conversation(_new_id(), space_id, "", now, now)
        with self.db.begin() as conn:
            conn.execute(insert(conversations).values(**asdict(conv)))
        return conv

    def _get(self, conn: Connection, space_id: str, conversation_id: str) -> Conversation:
        row = conn.execute(
            select(conversations).where(
                conversations.c.space_id == space_id, conversations.c.conversation_id == conversation_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no conversation {shown(conversation_id)} in space {space_id!r}", space_id=space_id)
        return Conversation(**row._asdict())

    def get(self, space_id: str, conversation_id: str) -> Conversation:
        with self.db.begin() as conn:
            return self._get(conn, space_id, conversation_id)

    def list(self, space_id: str) -> list[Conversation]:
        """The space's conversations, newest first."""
        query = select(conversations).where(conversations.c.space_id == space_id)
        with self.db.begin() as conn:
            rows = conn.execute(query.order_by(conversations.c.created_at.desc())).all()
        return [Conversation(**r._asdict()) for r in rows]

    def messages(self, space_id: str, conversation_id: str) -> tuple[Conversation, list[Message]]:
        """The conversation and its messages in order; `NotFound` outside its space."""
        with self.db.begin() as conn:
            conv = self._get(conn, space_id, conversation_id)
            rows = conn.execute(
                select(messages)
                .where(messages.c.conversation_id == conversation_id, messages.c.space_id == space_id)
                .order_by(messages.c.position)
            ).all()
        return conv, [_message(r) for r in rows]

    def add_turn(self, space_id: str, conversation_id: str, turn: Turn) -> None:
        """Append a question and its answer in one transaction. The first turn names the
        conversation; a conversation deleted meanwhile is `NotFound` and nothing is written."""
        with self.db.begin() as conn:
            conv = self._get(conn, space_id, conversation_id)
            last = conn.execute(
                select(func.max(messages.c.position)).where(messages.c.conversation_id == conversation_id)
            ).scalar()
            position = -1 if last is None else last
            for message in (turn.question, turn.answer):
                position += 1
                conn.execute(
                    insert(messages).values(
                        message_id=message.message_id,
                        conversation_id=conversation_id,
                        space_id=space_id,
                        position=position,
                        role=message.role,
                        text=message.text,
                        standalone_question=message.standalone_question,
                        language=message.language,
                        grounded=None if message.grounded is None else int(message.grounded),
                        citations=json.dumps([asdict(c) for c in message.citations], ensure_ascii=False),
                        sources=json.dumps([asdict(s) for s in message.sources], ensure_ascii=False),
                        created_at=message.created_at,
                    )
                )
            values: dict[str, Any] = {"updated_at": turn.answer.created_at}
            if not conv.title:
                values["title"] = title_of(turn.question.text)
            conn.execute(update(conversations).where(conversations.c.conversation_id == conversation_id).values(values))

    def delete(self, space_id: str, conversation_id: str) -> None:
        with self.db.begin() as conn:
            self._get(conn, space_id, conversation_id)
            conn.execute(delete(messages).where(messages.c.conversation_id == conversation_id))
            conn.execute(delete(conversations).where(conversations.c.conversation_id == conversation_id))


def new_message(role: Role, text: str, **fields: Any) -> Message:
    return Message(message_id=_new_id(), role=role, text=text, created_at=time.time(), **fields)
