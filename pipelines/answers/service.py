"""Search and answers: the passages a question finds, and the answer the ask workflow writes.

`/search`, `/ask` and the follow-ups of conversations come here. An ask workflow is built per
question from the serving role's retriever and citer and the endpoints `routing` names; leaving
the events early cancels the workflow and frees its LLM slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from llama_index.core.base.embeddings.base import BaseEmbedding

from docassist.pipelines.answers.citations import Citer
from docassist.pipelines.answers.events import AnswerDelta, AskCitation, AskComplete, AskError, AskSources
from docassist.pipelines.answers.workflow import AskInput, AskWorkflow, Mode, TextOf
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.llm.caller import LLMCaller
from docassist.pipelines.llm.endpoints import Endpoint
from docassist.pipelines.search.embeddings import MAX_QUERY_TOKENS, query_tokens
from docassist.pipelines.search.retrieval import MAX_QUERY_CHARS, Retriever, SearchResult
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.settings import Routing
from docassist.pipelines.streams import StreamEvent
from docassist.pipelines.summaries.events import SummaryProgress, last_event


class Answers:
    def __init__(
        self, retriever: Retriever, citer: Citer, embed_model: BaseEmbedding, caller: LLMCaller,
        endpoints: Mapping[str, Endpoint], routing: Routing, text_of: TextOf,
    ) -> None:  # fmt: skip
        """`embed_model`: the service's own, which retrieval counts a question's tokens with;
        `endpoints`: the runtime's, by name; `text_of`: a document's text."""
        self.retriever, self.citer, self.embed_model, self.caller = retriever, citer, embed_model, caller
        self.endpoints, self.routing, self.text_of = endpoints, routing, text_of

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint that writes answers (and condenses follow-ups)."""
        return self.endpoints[self.routing.answer]

    def fits(self, q: str) -> bool:
        """Whether retrieval reads all of `q`: its characters, then the embedding model's tokens."""
        return len(q) <= MAX_QUERY_CHARS and query_tokens(self.embed_model, q) <= MAX_QUERY_TOKENS

    async def search(self, q: str, space_id: str, top_k: int, scope: Scope | None = None) -> SearchResult:
        return await self.retriever.search(q, space_id, top_k, scope)

    def _workflow(self) -> AskWorkflow:
        eps, routing = self.endpoints, self.routing
        return AskWorkflow(
            self.retriever,
            self.caller,
            eps[routing.answer],
            eps[routing.map],
            eps[routing.reduce],
            self.citer,
            self.text_of,
        )

    async def events(
        self,
        q: str,
        space_id: str,
        mode: Mode,
        top_k: int,
        language: str | None = None,
        cite_by: str | None = None,
        max_tokens: int | None = None,
        scope: Scope | None = None,
        search_by: str | None = None,
        history: str = "",
    ) -> AsyncIterator[StreamEvent]:
        """The answer as events: `sources`, `processing` (when condensing), `answer` deltas, then
        `complete` (the workflow's own result) or `error`; leaving early cancels the LLM work. A
        follow-up `q` is answered in `language` (the follow-up's), found by `search_by` (its
        condensed form) with the earlier turns (`history`) before it in the prompt, cited by
        `cite_by` if given; `max_tokens` cuts it."""
        start = AskInput(
            q=q,
            space_id=space_id,
            top_k=top_k,
            mode=mode,
            language=language,
            search_by=search_by,
            cite_by=cite_by,
            history=history,
            max_tokens=max_tokens,
            scope=scope or Scope(),
        )
        handler = self._workflow().run(start_event=start)
        try:
            async for ev in handler.stream_events():
                if isinstance(ev, AskSources | AnswerDelta | SummaryProgress | AskCitation):
                    yield ev
            complete: AskComplete = await handler
            yield complete
        except DocassistError as exc:
            yield AskError.of(exc)
        finally:
            if not handler.is_done():
                with contextlib.suppress(Exception):
                    await handler.cancel_run()

    async def ask(self, q: str, space_id: str, mode: Mode, top_k: int, scope: Scope | None = None) -> AskComplete:
        """The `complete` event of `events`. Cancelling the caller closes the events at once,
        which cancels the workflow and frees its LLM slot."""
        return await last_event(self.events(q, space_id, mode, top_k, scope=scope), AskComplete)
