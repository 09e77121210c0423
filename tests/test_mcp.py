"""The MCP server at `/mcp`, driven by the official `mcp` SDK's client over streamable HTTP against
a real keyed `docassist serve`: the four tools and their typed arguments, answers with their
sources, and the same keys and scopes as HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import Integrations


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
