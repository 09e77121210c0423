"""Conversations and their messages in the shared database.

Every read and write names the space and the owner: a conversation looked up in another space,
or by anyone but the person who started it (admins included), is not found, exactly as if it did
not exist, so an id is never a capability. Conversations started with an API key have no owner
and are read with keys, as before people signed in. A turn — the question and its
answer — is written in one transaction once the answer is complete; an answer that failed
leaves the conversation as it was.

Reads come in pages: a space may hold thousands of conversations and a conversation hundreds of
turns, too much for one answer. A page ends at a cursor — opaque to clients, the keyset of its
last row (a conversation's creation time and id; a message's position) — so the next page starts
exactly after it, whatever was added or deleted meanwhile: every row comes once. Conversations
are listed newest first; a conversation's messages are read from its newest backwards, each page
in order (oldest first), as a chat shows them: its latest turns at once, earlier ones on demand.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from docassist.pipelines.answers.citations import Citation
from docassist.pipelines.answers.support import SentenceSupport
from docassist.pipelines.errors import InvalidInput, NotFound, shown
from docassist.pipelines.search.retrieval import Source
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import answer_feedback, conversations, messages

Role = Literal["user", "assistant"]
TITLE_CHARS = 80  # a conversation's title: its first question, cut to this
DEFAULT_PAGE = 50  # conversations, or messages, in a page when the client names no limit
MAX_PAGE = 200
# an answer's citations and sources as their columns hold them: JSON, locations as `{"page": 3}`
_CITATIONS = TypeAdapter(list[Citation])
_SOURCES = TypeAdapter(list[Source])
_SUPPORT = TypeAdapter(list[SentenceSupport])


@dataclass
class Conversation:
    conversation_id: str
    space_id: str
    title: str
    created_at: float
    updated_at: float
    owner: str | None = None  # the person who started it; None: started with an API key
    scope: Scope = field(default_factory=Scope)  # the documents its questions read; empty: the whole space

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "scope": json.dumps(self.scope.as_dict()) if self.scope else None}

    @classmethod
    def of_row(cls, row: Any) -> Conversation:
        values = row._asdict()
        kept = values.pop("scope", None)
        return cls(**values, scope=Scope.from_dict(json.loads(kept)) if kept else Scope())


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
    support: list[SentenceSupport] = field(default_factory=list)


@dataclass
class ConversationPage:
    conversations: list[Conversation]  # newest first
    next_cursor: str | None  # where the older ones continue; None: these are the last


@dataclass
class MessagePage:
    conversation: Conversation
    messages: list[Message]  # the newest not yet read, oldest first
    next_cursor: str | None  # where the earlier ones continue; None: these start at the first


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_position(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _cursor(kind: str, **at: Any) -> str:
    """Where a page ended, as the client hands it back: URL-safe, opaque, not to be built by hand."""
    raw = json.dumps({"k": kind, **at}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str, kind: str, fields: dict[str, Callable[[Any], bool]]) -> dict[str, Any]:
    """The keyset a cursor of `kind` holds; `InvalidInput` (422) for anything this store did not give."""
    try:
        at = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # not base64, not UTF-8, not JSON
        at = None
    if not isinstance(at, dict) or at.get("k") != kind or not all(ok(at.get(n)) for n, ok in fields.items()):
        raise InvalidInput(f"cursor {shown(cursor)} is not one this listing gave: pass its next_cursor as it came")
    return at


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}, not {limit}", limit=limit)


def _column(adapter: TypeAdapter, values: list) -> str:
    return json.dumps(adapter.dump_python(values, mode="json"), ensure_ascii=False)


def _message(row: Any) -> Message:
    return Message(
        message_id=row.message_id,
        role=row.role,
        text=row.text,
        created_at=row.created_at,
        standalone_question=row.standalone_question,
        language=row.language,
        grounded=None if row.grounded is None else bool(row.grounded),
        citations=_CITATIONS.validate_json(row.citations or "[]"),
        sources=_SOURCES.validate_json(row.sources or "[]"),
        support=_SUPPORT.validate_json(row.support or "[]"),
    )


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, space_id: str, owner: str | None = None, scope: Scope | None = None) -> Conversation:
        now = time.time()
        conv = Conversation(_new_id(), space_id, "", now, now, owner, scope or Scope())
        with self.db.begin() as conn:
            conn.execute(insert(conversations).values(**conv.row()))
        return conv

    def _get(self, conn: Connection, space_id: str, conversation_id: str, owner: str | None) -> Conversation:
        row = conn.execute(
            select(conversations).where(
                conversations.c.space_id == space_id,
                conversations.c.conversation_id == conversation_id,
                _owned_by(owner),
            )
        ).first()
        if row is None:
            raise NotFound(f"no conversation {shown(conversation_id)} in space {space_id!r}", space_id=space_id)
        return Conversation.of_row(row)

    def get(self, space_id: str, conversation_id: str, owner: str | None = None) -> Conversation:
        with self.db.begin() as conn:
            return self._get(conn, space_id, conversation_id, owner)

    def list(
        self, space_id: str, limit: int = DEFAULT_PAGE, cursor: str | None = None, owner: str | None = None
    ) -> ConversationPage:
        """Up to `limit` of the space's conversations of `owner`, newest first, after `cursor` (a `next_cursor`)."""
        check_limit(limit)
        c = conversations.c
        query = select(conversations).where(c.space_id == space_id, _owned_by(owner))
        if cursor is not None:
            at = _read_cursor(cursor, "conversations", {"t": _is_number, "id": _is_id})
            query = query.where(
                or_(c.created_at < at["t"], and_(c.created_at == at["t"], c.conversation_id < at["id"]))
            )
        with self.db.begin() as conn:
            rows = conn.execute(query.order_by(c.created_at.desc(), c.conversation_id.desc()).limit(limit + 1)).all()
        found = [Conversation.of_row(r) for r in rows[:limit]]
        if len(rows) <= limit:
            return ConversationPage(found, None)
        last = found[-1]
        return ConversationPage(found, _cursor("conversations", t=last.created_at, id=last.conversation_id))

    def page(
        self,
        space_id: str,
        conversation_id: str,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> MessagePage:
        """The conversation and the newest `limit` of its messages before `cursor` (from its newest
        without one), oldest first; `NotFound` outside its space. A turn is two messages: an even
        limit keeps each question with its answer."""
        check_limit(limit)
        query = select(messages).where(messages.c.conversation_id == conversation_id, messages.c.space_id == space_id)
        if cursor is not None:
            at = _read_cursor(cursor, "messages", {"c": lambda c: c == conversation_id, "p": _is_position})
            query = query.where(messages.c.position < at["p"])
        with self.db.begin() as conn:
            conv = self._get(conn, space_id, conversation_id, owner)
            rows = conn.execute(query.order_by(messages.c.position.desc()).limit(limit + 1)).all()
        kept = rows[:limit][::-1]
        more = len(rows) > limit
        return MessagePage(
            conv,
            [_message(r) for r in kept],
            _cursor("messages", c=conversation_id, p=kept[0].position) if more else None,
        )

    def messages(
        self, space_id: str, conversation_id: str, owner: str | None = None
    ) -> tuple[Conversation, list[Message]]:
        """The conversation and all its messages in order (the history a follow-up is condensed
        from); `NotFound` outside its space or for anyone but its owner."""
        with self.db.begin() as conn:
            conv = self._get(conn, space_id, conversation_id, owner)
            rows = conn.execute(
                select(messages)
                .where(messages.c.conversation_id == conversation_id, messages.c.space_id == space_id)
                .order_by(messages.c.position)
            ).all()
        return conv, [_message(r) for r in rows]

    def add_turn(self, space_id: str, conversation_id: str, turn: Turn, owner: str | None = None) -> None:
        """Append a question and its answer in one transaction. The first turn names the
        conversation; a conversation deleted meanwhile is `NotFound` and nothing is written."""
        with self.db.begin() as conn:
            conv = self._get(conn, space_id, conversation_id, owner)
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
                        citations=_column(_CITATIONS, message.citations),
                        sources=_column(_SOURCES, message.sources),
                        support=_column(_SUPPORT, message.support),
                        created_at=message.created_at,
                    )
                )
            values: dict[str, Any] = {"updated_at": turn.answer.created_at}
            if not conv.title:
                values["title"] = title_of(turn.question.text)
            conn.execute(update(conversations).where(conversations.c.conversation_id == conversation_id).values(values))

    def delete(self, space_id: str, conversation_id: str, owner: str | None = None) -> None:
        with self.db.begin() as conn:
            self._get(conn, space_id, conversation_id, owner)
            conn.execute(delete(messages).where(messages.c.conversation_id == conversation_id))
            conn.execute(delete(answer_feedback).where(answer_feedback.c.conversation_id == conversation_id))
            conn.execute(delete(conversations).where(conversations.c.conversation_id == conversation_id))


def _owned_by(owner: str | None):
    """A person's own conversations; without a person (an API key), those no person owns."""
    return conversations.c.owner.is_(None) if owner is None else conversations.c.owner == owner


def new_message(role: Role, text: str, **fields: Any) -> Message:
    return Message(message_id=_new_id(), role=role, text=text, created_at=time.time(), **fields)
