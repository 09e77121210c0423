"""The OpenAI chat-completions wire format, as much of it as `/v1` speaks: pydantic models of the
requests clients such as Open WebUI and the OpenAI SDK send, and of the answers they read.

A model is a space: `space:<space_id>`. `max_tokens` (or `max_completion_tokens`) caps the
answer. What docassist cannot do is refused with a 400 naming the field (`n` over 1, a tool call
`tool_choice` forces, a `response_format` other than text); sampling fields (`temperature`, …)
are accepted and ignored, so any client works. `sources` in answers and chunks is docassist's
extension."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field

from docassist.api.schemas import CitationOut, SupportOut, error_responses
from docassist.api.scope_schemas import ScopeIn
from docassist.pipelines.conversations.condense import Exchange
from docassist.pipelines.errors import InvalidInput, NotFound, UnsupportedValue, shown
from docassist.pipelines.search.scope import Scope
from docassist.pipelines.spaces import is_space_id

MODEL_PREFIX = "space:"
SOURCES_HEADING = "\n\nSources:\n"  # what starts the list of sources appended to an answer


def model_id(space_id: str) -> str:
    return MODEL_PREFIX + space_id


_MODEL_FIELDS = {"doc": "doc_ids", "tag": "tags", "lang": "languages"}  # a model id's scope suffixes


def space_of(model: str) -> str:
    """The space a model id names; 404 `model_not_found` (as OpenAI answers) for anything else."""
    return parse_model(model)[0]


def parse_model(model: str) -> tuple[str, Scope | None]:
    """The space a model id names and the scope its suffixes give: `space:team/tag:finance/doc:<id>`
    reads team's documents tagged finance or that one (`/lang:ru` too; each may repeat; a value
    percent-encoded where it holds a slash). A client that cannot send `scope` in the body (Open
    WebUI) names a scoped model instead. 404 `model_not_found` for an id of another shape."""
    head, *suffixes = model.split("/")
    space = head[len(MODEL_PREFIX) :]
    fields: dict[str, list[str]] = {name: [] for name in _MODEL_FIELDS.values()}
    for suffix in suffixes:
        kind, sep, value = suffix.partition(":")
        if not sep or not value or kind not in _MODEL_FIELDS:
            space = ""  # not a model docassist has
            break
        fields[_MODEL_FIELDS[kind]].append(unquote(value))
    if not (head.startswith(MODEL_PREFIX) and is_space_id(space)):
        raise NotFound(
            f"the model {model!r} does not exist: models are 'space:<space_id>' (GET /v1/models), optionally "
            "followed by /tag:<tag>, /doc:<doc_id> or /lang:<code> to read only those documents"
        )
    return space, (Scope.of(**fields) if suffixes else None)


# ---------------------------------------------------------------------- models
class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "docassist"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


# ---------------------------------------------------------------------- requests
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(description="space:<space_id>, one of GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="the answer's cap in tokens")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="the same, by its newer name")
    n: int | None = Field(default=None, description="1: one answer per completion")
    tools: list[dict[str, Any]] | None = Field(default=None, description="accepted; never called")
    tool_choice: str | dict[str, Any] | None = Field(default=None, description='"none" or "auto": no tool call')
    function_call: str | dict[str, Any] | None = Field(default=None, description="tool_choice's older name")
    response_format: dict[str, Any] | None = Field(default=None, description='{"type": "text"}: no JSON mode')
    scope: ScopeIn | None = Field(
        default=None,
        description="docassist's own: the documents to read, as /ask's scope fields (the OpenAI client's "
        'extra_body={"scope": {"tags": ["finance"]}}); absent: the whole space',
    )

    def reads(self) -> Scope | None:
        """The documents the answer reads: `scope`'s, else the model id's, else the whole space."""
        return self.scope.scope() if self.scope else parse_model(self.model)[1]

    def answer_cap(self) -> int | None:
        """The tokens the answer may take: the smaller of `max_tokens` and `max_completion_tokens`."""
        caps = [c for c in (self.max_tokens, self.max_completion_tokens) if c is not None]
        return min(caps) if caps else None

    def check_supported(self) -> None:
        """`UnsupportedValue` for what the answer could not honour: several choices, a tool call
        that `tool_choice` forces (`tools` alone, or with "auto", leaves the model free to answer
        in text, which is all docassist does), or an output format other than text."""
        if self.n is not None and self.n != 1:
            raise UnsupportedValue(f"n={self.n}: docassist writes one answer per completion; n must be 1", param="n")
        for param, choice in (("tool_choice", self.tool_choice), ("function_call", self.function_call)):
            if choice is not None and choice not in ("none", "auto"):
                raise UnsupportedValue(
                    f"{param} {_quoted(choice)} forces a tool call, and docassist answers from the documents "
                    'without calling tools; use "auto" or "none"',
                    param=param,
                )
        kind = (self.response_format or {"type": "text"}).get("type")
        if kind != "text":
            raise UnsupportedValue(
                f"response_format of type {_quoted(kind)}: docassist answers in text, with its sources; "
                'use {"type": "text"} or leave it out',
                param="response_format",
            )

    def _last_question(self) -> int:
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "user" and self.messages[i].text.strip():
                return i
        raise InvalidInput("messages holds no user message with text to answer")

    def question(self) -> str:
        """The last user message: what is answered."""
        return self.messages[self._last_question()].text

    def history(self) -> list[Exchange]:
        """The user messages before it, each with the assistant's reply that followed (if any):
        what the question is condensed from. System and tool messages are not part of it."""
        pairs: list[Exchange] = []
        for message in self.messages[: self._last_question()]:
            if message.role == "user" and message.text.strip():
                pairs.append(Exchange(message.text, ""))
            elif message.role == "assistant" and pairs and not pairs[-1].answer:
                pairs[-1].answer = _without_sources(message.text)
        return pairs


def _quoted(value: object) -> str:
    """A value a client sent, as a message quotes it: JSON, cut short."""
    return shown(value if isinstance(value, str) else json.dumps(value))


def _without_sources(answer: str) -> str:
    """An answer of ours as a client sends it back: without the "Sources" list appended to it."""
    return answer.split(SOURCES_HEADING, 1)[0]


# ---------------------------------------------------------------------- answers
class SourceRef(BaseModel):
    """A passage the answer was written from (docassist's extension)."""

    index: int
    doc_id: str
    filename: str
    chunk: int
    score: float
    text: str


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> CompletionUsage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


FinishReason = Literal["stop", "length"]  # "length": the answer was cut at its token cap


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    sources: list[SourceRef]
    citations: list[CitationOut] = Field(default_factory=list, description="docassist: the quotes, as `/ask` gives")
    support: list[SupportOut] = Field(default_factory=list, description="docassist: each sentence's citation")


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    sources: list[SourceRef] | None = None
    citations: list[CitationOut] | None = None
    support: list[SupportOut] | None = None


def completion_id() -> tuple[str, int]:
    return "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())


# ---------------------------------------------------------------------- errors
class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """Every error under `/v1/`, as OpenAI's clients read one."""

    error: OpenAIErrorBody


_UNSUPPORTED = (
    "a field docassist cannot honour (`n` over 1, a forced tool call, a JSON `response_format`): "
    "`unsupported_value`, the field in `param`"
)


def openai_error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`error_responses` with OpenAI's error body instead of docassist's envelope; 400 is `/v1`'s own."""
    own = {400: {"description": _UNSUPPORTED, "content": {"application/json": {}}}} if 400 in codes else {}
    docs = {**own, **error_responses(*(code for code in codes if code != 400))}
    return {code: {**doc, "model": OpenAIErrorResponse} for code, doc in docs.items()}


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, envelope: dict[str, Any]) -> dict[str, Any]:
    """docassist's error envelope in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`;
    `param` is the request field an error names (`details.param`), if any."""
    error = envelope.get("error", {}) if isinstance(envelope, dict) else {}
    code = error.get("code", "error")
    details = error.get("details")
    param = details.get("param") if isinstance(details, dict) else None
    if status == 404 and "model" in str(error.get("message", "")):
        code = "model_not_found"
    elif status == 401:
        code = "invalid_api_key"
    return {
        "error": {
            "message": error.get("message", "error"),
            "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param if isinstance(param, str) else None,
            "code": code,
        }
    }
