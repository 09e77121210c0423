"""Conversations: a follow-up is condensed from the turns before it, answered by the ask
workflow, and stored with its answer once the answer is complete.

The conversation is looked up before any event (`NotFound` while an error status can still be
sent); a turn whose answer failed stores nothing, so the conversation stays as it was and the
question can simply be asked again. Answers come from the answers feature (`Answers`), which
knows nothing of conversations.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from docassist.pipelines.answers.events import AskComplete, AskError
from docassist.pipelines.answers.service import Answers
from docassist.pipelines.answers.workflow import Mode
from docassist.pipelines.conversations.condense import Condensed, Condenser, Exchange
from docassist.pipelines.conversations.events import TurnComplete
from docassist.pipelines.conversations.store import (
    DEFAULT_PAGE,
    Conversation,
    ConversationPage,
    ConversationStore,
    Message,
    MessagePage,
    Turn,
    new_message,
)
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.lanes import Lane
from docassist.pipelines.language import detect_language
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.spaces import check_space_id
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import Usage, last_event

T = TypeVar("T")


def exchanges_of(messages: list[Message]) -> list[Exchange]:
    """A stored conversation as the condense step reads it: each question with its answer
    (none for a declined one, which says nothing about the subject)."""
    pairs, question = [], None
    for m in messages:
        if m.role == "user":
            question = m.text
        elif question is not None:
            pairs.append(Exchange(question, m.text if m.grounded else ""))
            question = None
    return pairs


def with_condense(done: AskComplete, condensed: Condensed, started: float) -> tuple[dict[str, float], Usage]:
    """The answer's timing and usage with the condense call counted in."""
    timing = {**done.timing, "condense_s": condensed.seconds, "total_s": round(time.perf_counter() - started, 3)}
    usage = done.usage
    if condensed.completion is not None:
        c = condensed.completion
        calls = usage.llm_calls + 1
        prompt, completion = usage.prompt_tokens + c.prompt_tokens, usage.completion_tokens + c.completion_tokens
        usage = usage.model_copy(update={"llm_calls": calls, "prompt_tokens": prompt, "completion_tokens": completion})
    return timing, usage


class Conversations:
    def __init__(self, store: ConversationStore, condenser: Condenser, answers: Answers, lane: Lane) -> None:
        self.store, self.condenser, self.answers, self.lane = store, condenser, answers, lane

    async def _db(self, fn: Callable[[], T]) -> T:
        return await self.lane.run(fn)

    async def create(self, space_id: str, owner: str | None = None, scope: Scope | None = None) -> Conversation:
        """A new conversation; `scope` is kept for its questions (a question may give its own)."""
        check_space_id(space_id)
        return await self._db(lambda: self.store.create(space_id, owner, scope))

    async def list(
        self, space_id: str, limit: int = DEFAULT_PAGE, cursor: str | None = None, owner: str | None = None
    ) -> ConversationPage:
        check_space_id(space_id)
        return await self._db(lambda: self.store.list(space_id, limit, cursor, owner))

    async def page(
        self,
        space_id: str,
        conversation_id: str,
        limit: int = DEFAULT_PAGE,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> MessagePage:
        """The conversation with a page of its messages: the newest, or those before `cursor`."""
        check_space_id(space_id)
        return await self._db(lambda: self.store.page(space_id, conversation_id, limit, cursor, owner))

    async def get(
        self, space_id: str, conversation_id: str, owner: str | None = None
    ) -> tuple[Conversation, list[Message]]:
        """The conversation with every message: the history a follow-up is condensed from."""
        check_space_id(space_id)
        return await self._db(lambda: self.store.messages(space_id, conversation_id, owner))

    async def delete(self, space_id: str, conversation_id: str, owner: str | None = None) -> None:
        check_space_id(space_id)
        await self._db(lambda: self.store.delete(space_id, conversation_id, owner))

    async def answer_events(
        self,
        history: list[Exchange],
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        max_tokens: int | None = None,
        scope: Scope | None = None,
    ) -> AsyncIterator[tuple[StreamEvent, Condensed]]:
        """The ask events of `q` after `history`, answered in `q`'s language (cut at `max_tokens` if
        given). Retrieval reads the follow-up condensed from the history; the model is asked the
        follow-up itself, the earlier turns before it — a small model asked "the previous question
        and the follow-up" answers the previous one. Citations are ranked by the follow-up, or by the
        model's rewrite where it made one (it names what the follow-up leaves out)."""
        language = detect_language(q).code
        condensed = await self.condenser.standalone(history, q, language)
        follow_up = condensed.how != "first"
        answers = self.answers.events(
            q,
            space_id,
            mode,
            top_k,
            language,
            cite_by=condensed.question if condensed.how == "llm" else None,
            max_tokens=max_tokens,
            scope=scope,
            search_by=condensed.question if follow_up else None,
            history=await self.condenser.history(history) if follow_up else "",
        )
        async for ev in answers:
            yield ev, condensed

    async def after_events(
        self,
        history: list[Exchange],
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        max_tokens: int | None = None,
        scope: Scope | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer's events of a follow-up whose history the caller holds (stateless: `/v1`)."""
        async for ev, _ in self.answer_events(history, q, space_id, mode, top_k, max_tokens, scope):
            yield ev

    async def ask_after(
        self,
        history: list[Exchange],
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        max_tokens: int | None = None,
        scope: Scope | None = None,
    ) -> AskComplete:
        """The `complete` event of `after_events`."""
        events = self.after_events(history, q, space_id, mode, top_k, max_tokens, scope)
        return await last_event(events, AskComplete)

    async def turn_events(
        self,
        space_id: str,
        conversation_id: str,
        q: str,
        mode: Mode,
        top_k: int,
        owner: str | None = None,
        scope: Scope | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The conversation now (`NotFound` at once), then the events of the turn, ending with
        `TurnComplete` once question and answer are stored, or the answer's `error`. The turn reads
        `scope` where given, else the conversation's own."""
        check_space_id(space_id)
        conversation, messages = await self.get(space_id, conversation_id, owner)
        history = exchanges_of(messages)
        reads = scope if scope is not None else conversation.scope

        async def follow() -> AsyncIterator[StreamEvent]:
            started = time.perf_counter()
            async for ev, condensed in self.answer_events(history, q, space_id, mode, top_k, scope=reads):
                if isinstance(ev, AskComplete):
                    yield await self._stored(space_id, conversation_id, owner, q, ev, condensed, started)
                    return
                yield ev
                if isinstance(ev, AskError):
                    return

        return follow()

    async def turn(
        self,
        space_id: str,
        conversation_id: str,
        q: str,
        mode: Mode,
        top_k: int,
        owner: str | None = None,
        scope: Scope | None = None,
    ) -> TurnComplete:
        """The `complete` event of `turn_events`."""
        events = await self.turn_events(space_id, conversation_id, q, mode, top_k, owner, scope)
        return await last_event(events, TurnComplete)

    async def _stored(
        self,
        space_id: str,
        conversation_id: str,
        owner: str | None,
        q: str,
        done: AskComplete,
        condensed: Condensed,
        started: float,
    ) -> StreamEvent:
        question = new_message("user", q, standalone_question=condensed.question, language=done.language)
        answer = new_message(
            "assistant",
            done.answer,
            language=done.language,
            grounded=done.grounded,
            citations=done.citations,
            sources=done.sources,
            support=done.support,
        )
        try:
            await self._db(lambda: self.store.add_turn(space_id, conversation_id, Turn(question, answer), owner))
        except DocassistError as exc:  # deleted meanwhile, or the database is gone: the client hears why
            return AskError.of(exc)
        timing, usage = with_condense(done, condensed, started)
        kept = {name: getattr(done, name) for name in AskComplete.model_fields if name not in ("timing", "usage")}
        return TurnComplete(
            **kept,
            timing=timing,
            usage=usage,
            conversation_id=conversation_id,
            message_id=answer.message_id,
            standalone_question=condensed.question,
            condensed=condensed.how,
        )
