"""The MCP server: docassist's search, answers, summaries and document list as tools for MCP
clients (Claude Desktop, IDEs), over streamable HTTP at `/mcp` inside the service.

Stateless streamable HTTP: every POST stands alone, so `serve --workers N` and several backends
behind a load balancer need no sticky sessions. The same keys and scopes as HTTP: `RequestGuard`
refuses a request without a valid key (401) before it reaches the server, and each tool reads
the key from the same headers (`Authorization: Bearer` or `X-API-Key`) to check the space it is
asked about — a tool call for another space is an error result. Tools call the `Assistant` and
nothing below it; results are text with their sources, errors text that reads as the service's own
(`<code>: <message>`).

Only POST: a stateless server has no server-initiated messages to stream, so `GET /mcp` (and every
other method) is 405, as the streamable HTTP transport allows, instead of an event stream that
would carry nothing and hold a connection forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, InputRequiredResult, TextContent
from pydantic import Field, ValidationError
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from docassist.api.audit_trail import of_caller
from docassist.api.auth import NOBODY, Access
from docassist.api.callers import Callers
from docassist.api.errors import envelope_response, status_of
from docassist.pipelines.answers.events import AskComplete
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.documents.catalog import MAX_PAGE, DocumentQuery
from docassist.pipelines.documents.locations import Location
from docassist.pipelines.errors import DocassistError, Forbidden, SessionExpired
from docassist.pipelines.identity.audit import Action, question
from docassist.pipelines.identity.service import Identity
from docassist.pipelines.logs import event, request_id_var
from docassist.pipelines.search import scope as scopes
from docassist.pipelines.search.retrieval import MAX_QUERY_CHARS, Source
from docassist.pipelines.spaces import SPACE_PATTERN
from docassist.pipelines.summaries.events import SummaryComplete
from docassist.pipelines.views import DocumentView

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
MCP_PATH = "/mcp"
SpaceId = Annotated[str, Field(pattern=SPACE_PATTERN, description="the space to work in: 1-64 of A-Z a-z 0-9 _ -")]
Question = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question or keywords")]
TopK = Annotated[int, Field(ge=1, le=100, description="how many passages to retrieve")]
DocId = Annotated[str, Field(min_length=1, max_length=128, description="a document id from list_documents")]
DocIds = Annotated[list[str] | None, Field(description="only these documents (ids from list_documents)")]
Tags = Annotated[list[str] | None, Field(description="only documents with any of these tags")]
Languages = Annotated[list[str] | None, Field(description='only documents in these languages ("ru", "en")')]
INSTRUCTIONS = (
    "docassist answers questions over the documents of a space, with the passages it used. "
    "list_documents shows what a space holds; search finds passages without an LLM; ask answers a "
    "question in its language, citing sources; summarize summarizes one whole document."
)


class _Guard:
    """The caller of each tool call, read from its request's headers as `RequestGuard` reads them
    (`Callers`: an API key, a personal token, a session cookie), and an audit entry for the call."""

    def __init__(self, callers: Callers, identity: Identity) -> None:
        self.callers, self.identity = callers, identity

    async def access(self, ctx: Context) -> Access:
        headers: Mapping[str, str] = ctx.headers or {}
        raw = {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in headers.items()}
        try:
            return await self.callers.resolve(raw) or NOBODY
        except SessionExpired:
            return NOBODY

    async def __call__(
        self,
        ctx: Context,
        space_id: str,
        call: Callable[[Access], Coroutine[Any, Any, T]],
        action: Action | None = None,
        **about: str,
    ) -> T:
        """The call for a space the caller reaches, run until it has ended (`_until_ended`); its
        `DocassistError` reaches `DocassistMCP.call_tool`, which makes it the tool's error text."""
        caller = await self.access(ctx)
        try:
            caller.check_space(space_id)
        except Forbidden as exc:
            await self._record(caller, "access_denied", space_id, action or "list_documents", detail=exc.message[:200])
            raise
        if action is not None:
            await self._record(caller, action, space_id, action, **about)
        return await _until_ended(call(caller))

    async def _record(self, caller: Access, action: Action, space_id: str, tool: str, **about: str) -> None:
        await self.identity.record(of_caller(caller, action, route=f"MCP {tool}", space_id=space_id, **about))


async def _until_ended(work: Coroutine[Any, Any, T]) -> T:
    """`work` in a task of its own; cancelled, it is cancelled once and waited for until it has ended.

    A 2025-era (handshake) call runs in the SDK's task group, under an anyio cancel scope that the
    SDK cancels when its client leaves (the request is cancelled, its transport terminated). anyio
    cancels level-triggered: every await until the tool returns is cancelled again, the cleanup's
    too, so an answer's workflow never waited for its run to stop (`cancel_run`) — its steps went
    on calling the LLM — and the `with assistant.admit(...)` around it released the key's place at
    once. Here the work sees one cancellation, as an HTTP route's does (`api/disconnect.py`): its
    cleanup runs to the end, and the place it holds is released only when nothing of it runs."""
    task = asyncio.ensure_future(work)  # a new task: outside the SDK's cancel scope
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
            await task  # its own outcome: the call was cancelled, whatever the work ended with
        raise


class DocassistMCP(MCPServer):
    """`MCPServer` whose tool errors read as the service's own errors do: `<code>: <message>`.

    The SDK prefixes a tool's error with `Error executing tool <name>: ` and reports arguments
    that fail the tool's schema with pydantic's whole dump (URLs, input values). `call_tool` is
    where both surface as exceptions, with what was raised as their cause."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError) and not isinstance(exc, UnexpectedToolError):
                # how the SDK reports arguments that fail the tool's schema (a tool's own crash is Unexpected)
                return _tool_error(f"invalid_input: the arguments of {name} are not valid\n{_problems(exc.__cause__)}")
            if (error := _cause(exc, DocassistError)) is not None:
                _log_error(name, error)
                return _tool_error(f"{error.code}: {error.message}")
            if isinstance(exc, UnexpectedToolError):
                return _tool_error(_internal_error(name, exc.__cause__ or exc))
            raise  # the SDK's own (an unknown tool)


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` in `exc`'s chain of causes (the SDK wraps what a tool raised, once or twice)."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, kind):
        cause = cause.__cause__
    return cause


def _problems(invalid: ValidationError) -> str:
    """One line per bad argument: its name and what it should be; never the value sent."""
    lines: dict[str, str] = {}
    for err in invalid.errors(include_url=False, include_input=False):
        argument = ".".join(str(part) for part in err["loc"]) or "arguments"
        lines.setdefault(argument, f"{argument}: {err['msg']}")
    return "\n".join(lines.values())


def _tool_error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _log_error(tool: str, error: DocassistError) -> None:
    """As `api/errors.py` logs a refused or failed request (`[ERROR] <code>`)."""
    status = status_of(error)
    level = logging.ERROR if status >= 500 else logging.WARNING
    event(f"[ERROR] {error.code}", f"MCP tool {tool}: {error.message}", level=level, code=error.code, tool=tool)


def _internal_error(tool: str, crash: BaseException) -> str:
    """A crash, as a 500's envelope says it: the details go to the log, under the request id."""
    rid = request_id_var.get()
    event(
        "[ERROR] internal_error",
        f"MCP tool {tool}: {type(crash).__name__}: {crash}",
        level=logging.ERROR,
        exc_info=crash,
    )
    return f"internal_error: an internal error; the service log has its details under request id {rid}"


def build(assistant: Assistant, callers: Callers) -> DocassistMCP:
    server = _quietly(lambda: DocassistMCP("docassist", instructions=INSTRUCTIONS, version="0.1.0"))
    guarded = _Guard(callers, assistant.identity)
    _answer_tools(server, assistant, guarded)
    _document_tools(server, assistant, guarded)
    return server


def _answer_tools(server: MCPServer, assistant: Assistant, guarded: _Guard) -> None:
    @server.tool()
    async def search(
        space_id: SpaceId,
        q: Question,
        ctx: Context,
        top_k: TopK = 5,
        doc_ids: DocIds = None,
        tags: Tags = None,
        languages: Languages = None,
    ) -> str:
        """The passages of the space that best match `q` (hybrid dense + BM25 retrieval, no LLM), with
        their documents and chunk numbers; only from the documents, tags and languages given, if any."""

        async def run(caller: Access) -> str:
            scope = scopes.Scope.of(doc_ids, tags, languages)
            with assistant.admit("search", caller.holder):
                result = await assistant.search(q, space_id, top_k, scope)
            return _passages(result.sources) or f"Nothing in space {space_id!r} matches."

        return await guarded(ctx, space_id, run, "search", detail=question(q))

    @server.tool()
    async def ask(
        space_id: SpaceId,
        q: Question,
        ctx: Context,
        top_k: TopK = 5,
        mode: Literal["auto", "summarize", "direct"] = "auto",
        doc_ids: DocIds = None,
        tags: Tags = None,
        languages: Languages = None,
    ) -> str:
        """An answer to `q` from the space's documents (only those given by id, tag or language, if
        any), in the language of the question, followed by the sources it was written from."""

        async def run(caller: Access) -> str:
            scope = scopes.Scope.of(doc_ids, tags, languages)
            with assistant.admit("answer", caller.holder):
                done = await assistant.ask(q, space_id, mode, top_k, scope)
            return done.answer + _quotes(done) + ("\n\nSources:\n" + _source_list(done.sources) if done.sources else "")

        return await guarded(ctx, space_id, run, "ask", detail=question(q))


def _document_tools(server: MCPServer, assistant: Assistant, guarded: _Guard) -> None:
    @server.tool()
    async def summarize(space_id: SpaceId, doc_id: DocId, ctx: Context) -> str:
        """The summary of one whole document of the space, in the document's language (cached after
        the first time)."""

        async def run(caller: Access) -> str:
            with assistant.admit("answer", caller.holder):
                done = await assistant.summarize(space_id, doc_id)
            return done.summary + _summary_passages(done)

        return await guarded(ctx, space_id, run, "summarize", doc_id=doc_id)

    @server.tool()
    async def list_documents(space_id: SpaceId, ctx: Context, tag: str | None = None) -> str:
        """The documents of the space (with `tag` only, if given), oldest first: id, file name, title,
        language, tags, chunks, summary status."""

        async def run(caller: Access) -> str:
            page = await assistant.documents(space_id, DocumentQuery(tag=tag, limit=MAX_PAGE))
            lines = [_document_line(v) for v in page.documents]
            return "\n".join(lines) or f"Space {space_id!r} holds no documents."

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
    server.streamable_http_app(  # makes `server.session_manager`, which serves the route
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return [Route(MCP_PATH, endpoint=_PostOnly(server.session_manager.handle_request))]


class _PostOnly:
    """405 in the service's envelope for every method but POST, before the SDK sees the request.

    Stateless, the server has nothing to send unasked: the SDK would answer `GET /mcp` with an event
    stream that carries nothing and never ends — a connection held forever, outside any per-key
    limit — and `DELETE` (ending a session) has no session to end. The streamable HTTP transport
    lets a server without that stream answer GET with 405; clients then only POST."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            await self.app(scope, receive, send)
            return
        message = f"{scope['method']} {MCP_PATH}: this stateless MCP server takes POST only (no server-sent stream)"
        response = envelope_response(405, "method_not_allowed", message, headers={"Allow": "POST"})
        await response(scope, receive, send)


def _where(place: Location | None) -> str:
    """ ", page 3" — a place as the tools' text names it ("" when unknown)."""
    return "".join(f", {name} {value}" for name, value in place.as_dict().items()) if place else ""


def _location(s: Source) -> str:
    place = s.match_location or s.location
    where = _where(place)
    return f"{s.filename} (doc_id {s.doc_id}, chunk {s.chunk}{where})"


def _quotes(done: AskComplete) -> str:
    """The quotes the answer rests on, and which quote bears out each of its sentences."""
    if not done.citations:
        return ""
    quotes = []
    for i, c in enumerate(done.citations, 1):
        quotes.append(f"[{i}] {c.filename}{_where(c.location)}: «{' '.join(c.quote.split())}»")
    lines = [f"- {' '.join(s.text.split())} [{s.citation + 1}]" for s in done.support if s.citation is not None]
    each = "\n\nEach sentence and its quote:\n" + "\n".join(lines) if lines else ""
    return "\n\nQuotes:\n" + "\n".join(quotes) + each


def _summary_passages(done: SummaryComplete) -> str:
    """Each summary sentence with the passage of the document it rests on."""
    lines = []
    for s in done.sentences:
        for c in s.citations[:1]:
            lines.append(f"- {' '.join(s.text.split())} ← «{' '.join(c.quote.split())}»{_where(c.location)}")
    return "\n\nEach sentence and its passage:\n" + "\n".join(lines) if lines else ""


def _source_list(sources: list[Source]) -> str:
    return "\n".join(f"[{i}] {_location(s)}" for i, s in enumerate(sources, 1))


def _passages(sources: list[Source]) -> str:
    return "\n\n".join(f"[{i}] {_location(s)}, score {s.score:.3f}\n{s.text}" for i, s in enumerate(sources, 1))


def _document_line(v: DocumentView) -> str:
    r = v.record
    title = f"  «{r.title}»" if r.title else ""
    tags = f"  tags {', '.join(v.tags)}" if v.tags else ""
    status = f"{r.chunks} chunks  summary {v.summary_status}"
    return f"{r.doc_id}  {r.filename}{title}  language {r.language}{tags}  {status}"
