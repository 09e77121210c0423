"""An OpenAI-compatible API, so chat front ends (Open WebUI, LibreChat) and the OpenAI SDKs talk
to docassist as to a model server: one model per space, answered by the `/ask` path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.errors import status_of
from docassist.api.held import HeldEventSourceResponse
from docassist.api.openai_protocol import (
    SOURCES_HEADING,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    CompletionUsage,
    Delta,
    FinishReason,
    Model,
    ModelList,
    SourceRef,
    completion_id,
    model_id,
    openai_error,
    openai_error_responses,
    space_of,
)
from docassist.api.schemas import CitationOut, SupportOut
from docassist.pipelines.answers.events import AnswerDelta, AskComplete, AskError
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.identity.audit import question
from docassist.pipelines.search.retrieval import Source

router = APIRouter(prefix="/v1", tags=["openai-compatible"])
TOP_K = 5


@router.get("/models", response_model=ModelList, responses=openai_error_responses(401, 408))
async def models(assistant: AssistantDep, access: AccessDep) -> ModelList:
    """One model per space the caller reaches that holds documents, `space:<space_id>`: a limited
    key's spaces, a person's (by session or personal token); for a key for every space (or without
    `API_KEYS`), every such space."""
    return ModelList(data=[Model(id=model_id(s)) for s in await assistant.spaces(access.spaces)])


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **openai_error_responses(400, 401, 403, 404, 408, 409, 413, 422, 429, 503),
    },
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, assistant: AssistantDep, access: AccessDep
) -> ChatCompletion | HeldEventSourceResponse:
    """The last user message answered over the model's space, as `/ask` answers it (mode `auto`,
    5 passages); the answer ends with a short "Sources" list and the passages are in `sources`.
    After earlier messages it is a follow-up: rewritten from them into a question that stands on
    its own before retrieval, as conversations are (nothing is stored: the history is the
    request's). `stream: true` streams `chat.completion.chunk`s, then `[DONE]`;
    `stream_options.include_usage` adds a last chunk with the usage. `max_tokens` cuts the answer
    (`finish_reason: "length"`); `n` over 1, a forced tool call or a JSON `response_format` is a
    400 naming the field."""
    space_id = access.check_space(space_of(body.model))
    body.check_supported()
    q, history, cap, scope = body.question(), body.history(), body.answer_cap(), body.reads()
    await record(request, access, "ask", space_id=space_id, detail=question(q))
    cid, created = completion_id()
    if not body.stream:
        with assistant.admit("answer", access.holder):
            done = await assistant.ask_after(history, q, space_id, "auto", TOP_K, cap, scope)
        return _completion(cid, created, body.model, done)
    events = await assistant.ask_after_events(history, q, space_id, "auto", TOP_K, cap, scope)  # lazy: no work yet
    permit = assistant.admit("answer", access.holder)
    usage_chunk = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: Delta, finish: FinishReason | None = None, **extra: Any) -> dict[str, str]:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        return _data(ChatCompletionChunk(id=cid, created=created, model=body.model, choices=[choice], **extra))

    async def relay() -> AsyncIterator[dict[str, str]]:
        yield chunk(Delta(role="assistant", content=""))
        async for ev in events:
            if isinstance(ev, AnswerDelta):
                # a retry in the question's language starts the answer over: OpenAI streams cannot
                # take text back, so the retried answer follows the first after a blank line
                yield chunk(Delta(content=("\n\n" if ev.reset else "") + ev.delta))
            elif isinstance(ev, AskComplete):
                yield chunk(
                    Delta(content=_sources_text(ev.sources)),
                    _finish_reason(ev),
                    sources=_refs(ev.sources),
                    citations=_citations(ev),
                    support=_support(ev),
                )
                if usage_chunk:
                    usage = CompletionUsage.of(ev.usage.prompt_tokens, ev.usage.completion_tokens)
                    yield _data(ChatCompletionChunk(id=cid, created=created, model=body.model, choices=[], usage=usage))
                break
            elif isinstance(ev, AskError):
                error = DocassistError.from_code(ev.code, ev.message)
                yield {"data": json.dumps(openai_error(status_of(error), {"error": ev.model_dump()}))}
                break
        yield {"data": "[DONE]"}

    return HeldEventSourceResponse(permit, relay())


def _completion(cid: str, created: int, model: str, done: AskComplete) -> ChatCompletion:
    return ChatCompletion(
        id=cid,
        created=created,
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=done.answer + _sources_text(done.sources)),
                finish_reason=_finish_reason(done),
            )
        ],
        usage=CompletionUsage.of(done.usage.prompt_tokens, done.usage.completion_tokens),
        sources=_refs(done.sources),
        citations=_citations(done),
        support=_support(done),
    )


def _finish_reason(done: AskComplete) -> FinishReason:
    return "length" if done.truncated else "stop"


def _data(model: BaseModel) -> dict[str, str]:
    return {"data": model.model_dump_json(exclude_none=True)}


def _refs(sources: list[Source]) -> list[SourceRef]:
    return [
        SourceRef(index=i, doc_id=s.doc_id, filename=s.filename, chunk=s.chunk, score=s.score, text=s.text)
        for i, s in enumerate(sources, 1)
    ]


def _citations(done: AskComplete) -> list[CitationOut]:
    return [CitationOut(**asdict(c)) for c in done.citations]


def _support(done: AskComplete) -> list[SupportOut]:
    return [SupportOut.model_validate(s, from_attributes=True) for s in done.support]


def _sources_text(sources: list[Source]) -> str:
    """The short "Sources" list appended to the answer: a chat window shows where it came from."""
    if not sources:
        return ""
    seen: dict[str, list[int]] = {}
    for i, s in enumerate(sources, 1):
        seen.setdefault(s.filename or s.doc_id, []).append(i)
    lines = [f"- {name} [{', '.join(map(str, refs))}]" for name, refs in seen.items()]
    return SOURCES_HEADING + "\n".join(lines)
