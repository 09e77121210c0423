"""The MCP server: docassist's search, answers, summaries and document list as tools for MCP
clients (Claude Desktop, IDEs), over streamable HTTP at `/mcp` inside the service.

Stateless streamable HTTP: every POST stands alone, so `serve --workers N` and several backends
behind a load balancer need no sticky sessions. The same keys and scopes as HTTP: `RequestGuard`
refuses a request without a valid key (401) before it reaches the server, and each tool reads
the key from the same headers (`Authorization: Bearer` or `X-API-Key`) to check the space it is
asked about — a tool call for another space is an error result. Tools call the `Assistant` and
nothing below it; results are text with their sources.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.routing import BaseRoute

from docassist.api.auth import NOBODY, OPEN, Access, access_for
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.errors import DocassistError
from docassist.pipelines.keys import ApiKey
from docassist.pipelines.search.retrieval import MAX_QUERY_CHARS, Source
from docassist.pipelines.spaces import SPACE_PATTERN
from docassist.pipelines.views import DocumentView

T = TypeVar("T")
SpaceId = Annotated[str, Field(pattern=SPACE_PATTERN, description="the space to work in: 1-64 of A-Z a-z 0-9 _ -")]
Question = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question or keywords")]
TopK = Annotated[int, Field(ge=1, le=100, description="how many passages to retrieve")]
DocId = Annotated[str, Field(min_length=1, max_length=128, description="a document id from list_documents")]
INSTRUCTIONS = (
    "docassist answers questions over the documents of a space, with the passages it used. "
    "list_documents shows what a space holds; search finds passages without an LLM; ask answers a "
    "question in its language, citing sources; summarize summarizes one whole document."
)


class _Guard:
    """The key of each tool call, read from its request's headers as `RequestGuard` reads them."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self.keys = keys

    def access(self, ctx: Context) -> Access:
        if not self.keys:
            return OPEN
        headers: Mapping[str, str] = ctx.headers or {}
        raw = {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in headers.items()}
        return access_for(raw, self.keys) or NOBODY

    async def __call__(self, ctx: Context, space_id: str, call: Callable[[Access], Awaitable[T]]) -> T:
        """The call for a space the key reaches; docassist's errors become tool errors the model reads."""
        try:
            caller = self.access(ctx)
            caller.check_space(space_id)
            return await call(caller)
        except DocassistError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from exc


def build(assistant: Assistant) -> MCPServer:
    server = _quietly(lambda: MCPServer("docassist", instructions=INSTRUCTIONS, version="0.1.0"))
    guarded = _Guard(assistant.settings.api_keys)
    _answer_tools(server, assistant, guarded)
    _document_tools(server, assistant, guarded)
    return server


def _answer_tools(server: MCPServer, assistant: Assistant, guarded: _Guard) -> None:
    @server.tool()
    async def search(space_id: SpaceId, q: Question, ctx: Context, top_k: TopK = 5) -> str:
        """The passages of the space that best match `q` (hybrid dense + BM25 retrieval, no LLM), with
        their documents and chunk numbers."""

        async def run(caller: Access) -> str:
            with assistant.admit("search", caller.holder):
                result = await assistant.search(q, space_id, top_k)
            return _passages(result.sources) or f"Nothing in space {space_id!r} matches."

        return await guarded(ctx, space_id, run)

    @server.tool()
    async def ask(
        space_id: SpaceId,
        q: Question,
        ctx: Context,
        top_k: TopK = 5,
        mode: Literal["auto", "summarize", "direct"] = "auto",
    ) -> str:
        """An answer to `q` from the space's documents, in the language of the question, followed by
        the sources it was written from."""

        async def run(caller: Access) -> str:
            with assistant.admit("answer", caller.holder):
                done = await assistant.ask(q, space_id, mode, top_k)
            return done.answer + ("\n\nSources:\n" + _source_list(done.sources) if done.sources else "")

        return await guarded(ctx, space_id, run)


def _document_tools(server: MCPServer, assistant: Assistant, guarded: _Guard) -> None:
    @server.tool()
    async def summarize(space_id: SpaceId, doc_id: DocId, ctx: Context) -> str:
        """The summary of one whole document of the space, in the document's language (cached after
        the first time)."""

        async def run(caller: Access) -> str:
            with assistant.admit("answer", caller.holder):
                done = await assistant.summarize(space_id, doc_id)
            return done.summary

        return await guarded(ctx, space_id, run)

    @server.tool()
    async def list_documents(space_id: SpaceId, ctx: Context) -> str:
        """The documents of the space, oldest first: id, file name, language, chunks, summary status."""

        async def run(caller: Access) -> str:
            views = await assistant.documents(space_id)
            return "\n".join(_document_line(v) for v in views) or f"Space {space_id!r} holds no documents."

        return await guarded(ctx, space_id, run)


def _quietly(make: Callable[[], T]) -> T:
    """`MCPServer()` calls `logging.basicConfig`, which puts a handler at INFO on the root logger:
    every library's records (each httpx request, alembic) would reach the service's output
    unescaped, beside docassist's own log (`pipelines/logs.py`). The root logger is put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return make()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def routes(server: MCPServer) -> list[BaseRoute]:
    """The `/mcp` route, to add to the service's own app; run `server.session_manager.run()` in its
    lifespan. The SDK's DNS-rebinding check is off: `/mcp` is as reachable as `/ask` and
    is guarded the same way (keys), and a Host allow-list would refuse the service behind a proxy."""
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return list(app.routes)


def _location(s: Source) -> str:
    return f"{s.filename} (doc_id {s.doc_id}, chunk {s.chunk})"


def _source_list(sources: list[Source]) -> str:
    return "\n".join(f"[{i}] {_location(s)}" for i, s in enumerate(sources, 1))


def _passages(sources: list[Source]) -> str:
    return "\n\n".join(f"[{i}] {_location(s)}, score {s.score:.3f}\n{s.text}" for i, s in enumerate(sources, 1))


def _document_line(v: DocumentView) -> str:
    r = v.record
    return f"{r.doc_id}  {r.filename}  language {r.language}  {r.chunks} chunks  summary {v.summary_status}"
