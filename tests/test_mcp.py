"""The MCP server at `/mcp`, driven by the official `mcp` SDK's client over streamable HTTP against
a real keyed `docassist serve`: the four tools and their typed arguments, answers with their
sources, the same keys and scopes as HTTP, errors in the service's words, POST only, and an
abandoned call that stops its work and holds its key's place until it has."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import Integrations, Service, ingest, xquad_article
from tests.inprocess import start_in_process


async def _session(it: Integrations, headers: dict[str, str], calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(300)) as http,
        Client(streamable_http_client(f"{it.service.url}/mcp", http_client=http)) as client,
    ):
        results: list[Any] = []
        for name, args in calls:
            results.append(await client.list_tools() if name == "list_tools" else await client.call_tool(name, args))
        return results


def run(it: Integrations, headers: dict[str, str], *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    return asyncio.run(_session(it, headers, list(calls)))


def text(result: Any) -> str:
    return "\n".join(part.text for part in result.content if getattr(part, "type", "") == "text")


def test_the_tools_search_list_ask_and_summarize_a_space(integrations: Integrations):
    it = integrations
    tools, listed, found, answer, summary = run(
        it,
        it.team,
        ("list_tools", {}),
        ("list_documents", {"space_id": "team"}),
        ("search", {"space_id": "team", "q": "Which river flows out of the lake?", "top_k": 2}),
        ("ask", {"space_id": "team", "q": "Which river flows out of Lake Baikal?", "top_k": 2}),
        ("summarize", {"space_id": "team", "doc_id": it.doc_id}),
    )
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {"search", "ask", "summarize", "list_documents"}
    for tool in by_name.values():
        assert "space_id" in tool.input_schema["required"]
        assert tool.input_schema["properties"]["space_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    assert not listed.is_error and it.doc_id in text(listed) and "baikal.txt" in text(listed)
    assert not found.is_error and "Angara" in text(found) and f"doc_id {it.doc_id}, chunk 0" in text(found)
    assert not answer.is_error
    body, sources = text(answer).split("\n\nSources:\n")
    assert body.strip() and "[1] baikal.txt" in sources
    assert not summary.is_error and len(text(summary)) > 20
    log = it.service.log()  # the SDK's logging set-up does not let other libraries' records into the service's log
    assert "StreamableHTTP" not in log and "HTTP Request:" not in log


def test_keys_and_scopes_are_the_same_as_over_http(integrations: Integrations):
    it = integrations
    other, invalid, admin = run(
        it,
        it.team,
        ("list_documents", {"space_id": "ops"}),
        ("search", {"space_id": "no spaces allowed", "q": "x"}),
        ("list_documents", {"space_id": "nobody-uses-this"}),
    )
    assert other.is_error and "forbidden" in text(other) and "ops" in text(other)
    assert invalid.is_error and "space_id" in text(invalid)
    assert admin.is_error  # the team key reaches team only
    (everything,) = run(it, it.admin, ("list_documents", {"space_id": "nobody-uses-this"}))
    assert not everything.is_error and "holds no documents" in text(everything)
    with pytest.raises(BaseException, match="unhandled errors"):  # the SDK cannot even connect with a wrong key
        run(it, {"Authorization": "Bearer not-a-key"}, ("list_tools", {}))
    # because the guard refuses it (401, before the MCP server reads the body), as on every HTTP route
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    for headers in ({"Authorization": "Bearer not-a-key"}, {}):
        r = httpx.post(f"{it.service.url}/mcp", json=initialize, headers=headers, timeout=30)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_tool_errors_read_as_the_services_own(integrations: Integrations):
    it = integrations
    other, missing = run(
        it,
        it.team,
        ("list_documents", {"space_id": "ops"}),
        ("summarize", {"space_id": "team", "doc_id": "no-such-document"}),
    )
    assert other.is_error and text(other).startswith("forbidden: ") and "ops" in text(other), text(other)
    assert missing.is_error and text(missing).startswith("not_found: "), text(missing)
    assert "Error executing tool" not in text(other) + text(missing)


def test_bad_arguments_are_one_short_line_each_naming_the_argument(integrations: Integrations):
    it = integrations
    (bad,) = run(it, it.team, ("search", {"space_id": "no spaces allowed", "q": "x", "top_k": 1000}))
    head, *lines = text(bad).splitlines()
    assert bad.is_error and head.startswith("invalid_input: "), text(bad)
    assert [line.split(":")[0] for line in lines] == ["space_id", "top_k"], text(bad)
    assert "^[A-Za-z0-9_-]{1,64}$" in lines[0] and "100" in lines[1]
    assert "pydantic" not in text(bad) and "no spaces allowed" not in text(bad) and len(text(bad)) < 300


def test_get_and_other_methods_than_post_are_405_at_once(integrations: Integrations):
    it = integrations
    sse = {**it.team, "Accept": "text/event-stream"}
    for method in ("GET", "DELETE", "PUT"):
        # before, GET opened an event stream that carried nothing and never ended
        with httpx.stream(method, f"{it.service.url}/mcp", headers=sse, timeout=10) as r:
            assert r.status_code == 405 and r.headers["allow"] == "POST", (method, r.status_code)
            r.read()
            assert r.json()["error"]["code"] == "method_not_allowed", r.text
    assert httpx.get(f"{it.service.url}/mcp", timeout=10).status_code == 401  # the key first, as everywhere


# ---------------------------------------------------------------------- an abandoned call
MCP_KEY = "mcp-one-answer-key-0001"
ONE_ANSWER = {"X-API-Key": MCP_KEY}
SUMMARIZE = {"space_id": "long", "q": "Tell me everything about these documents", "mode": "summarize"}


@pytest.fixture(scope="module")
def one_answer(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    """One answer place per key (`ANSWERS_PER_KEY=1`); a 1,024-token window, so an ask in summarize
    mode over a few articles takes several LLM calls; JSON logs, where the tests read those calls."""
    svc = start_in_process(
        tmp_path_factory.mktemp("mcp_one_answer"),
        API_KEYS=f"{MCP_KEY}:*",
        ANSWERS_PER_KEY="1",
        LLM_CONTEXT_WINDOW="1024",
        LOG_FORMAT="json",
        **llama_env,
    )
    yield svc
    svc.stop()


def legacy(svc: Service, http: httpx2.AsyncClient) -> Client:
    """The official client speaking the 2025 handshake protocol, as Claude Code, VS Code and Cursor
    do: its calls run in the SDK's task group, not in their request's task."""
    return Client(streamable_http_client(f"{svc.url}/mcp", http_client=http), mode="legacy")


async def leave_once_the_llm_is_called(svc: Service, args: dict[str, Any]) -> None:
    """Call `ask` and hang up once the service has started the answer's first LLM call."""
    calls = len(svc.events("[LLM REQUEST"))
    async with (
        httpx2.AsyncClient(headers=ONE_ANSWER, timeout=httpx2.Timeout(300)) as http,
        legacy(svc, http) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.call_tool, "ask", args)
        with anyio.fail_after(120):
            while len(svc.events("[LLM REQUEST")) == calls:
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()  # the call's connection closes as the client does, right after


async def ask_until_admitted(svc: Service, args: dict[str, Any]) -> tuple[list[str], Any]:
    """The key's refusals (429's texts) while its place is taken, then the answer."""
    refusals: list[str] = []
    async with httpx2.AsyncClient(headers=ONE_ANSWER, timeout=httpx2.Timeout(300)) as http, legacy(svc, http) as c:
        with anyio.fail_after(120):
            while (result := await c.call_tool("ask", args)).is_error and text(result).startswith("too_many_requests"):
                refusals.append(text(result))
                await anyio.sleep(0.5)
        return refusals, result


def wait_for(found: Callable[[], list[dict[str, Any]]], seconds: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while not (records := found()):
        assert time.monotonic() < deadline, "not in the service's log in time"
        time.sleep(0.2)
    return records


@pytest.mark.slow
def test_an_abandoned_ask_starts_no_llm_call_and_holds_its_place_until_its_work_ends(one_answer: Service):
    svc = one_answer
    text_ = "\n\n".join(xquad_article("en", i) for i in range(5))
    with svc.client(**ONE_ANSWER) as c:
        assert ingest(c, "long", "long.txt", text_.encode()).status_code == 200
    asyncio.run(leave_once_the_llm_is_called(svc, SUMMARIZE))
    left = wait_for(lambda: [e for e in svc.events("[HTTP] Client left") if e.get("path") == "/mcp"])[-1]
    # the same key asks again at once: refused while the abandoned work runs, admitted once it has ended
    direct = {"space_id": "long", "q": "What is computational complexity?", "mode": "direct"}
    refusals, answer = asyncio.run(ask_until_admitted(svc, direct))
    assert not answer.is_error and text(answer).strip(), text(answer)
    assert all(r.startswith("too_many_requests: ") for r in refusals), refusals
    abandoned = [e for e in svc.events("[LLM REQUEST") if e.get("request_id") == left["request_id"]]
    assert abandoned, "the abandoned ask had started its first LLM call"
    late = [e for e in abandoned if e["ts"] > left["ts"]]
    # before, its map-reduce went on calling the LLM, and the key's second ask was let in beside it
    assert not late, f"{len(late)} LLM calls started after its client left at {left['ts']}: {late}"
