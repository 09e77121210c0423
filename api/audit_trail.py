"""What a route writes to the audit trail: the action, and who, where and from which address —
read off the request and the caller's access here, so a route names only what it did."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.types import Scope

from docassist.api.auth import Access
from docassist.pipelines.identity.audit import Action, AuditEntry
from docassist.pipelines.identity.people import Person
from docassist.pipelines.logs import request_id_var


def client_of(scope: Scope) -> str | None:
    """The address the request came from (the proxy's, behind one: a forwarded header is a claim
    anyone can make, so it is not trusted)."""
    client = scope.get("client")
    return client[0] if client else None


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    return f"{scope.get('method', '')} {getattr(route, 'path', None) or scope.get('path', '')}"


def entry(scope: Scope, access: Access | None, action: Action, **about: Any) -> AuditEntry:
    """The entry of an HTTP request: its route and client address beside `of_caller`'s."""
    return of_caller(access, action, route=route_of(scope), client=client_of(scope), **about)


def of_caller(
    access: Access | None,
    action: Action,
    *,
    route: str,
    client: str | None = None,
    person: Person | None = None,
    space_id: str | None = None,
    doc_id: str | None = None,
    conversation_id: str | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """Who did `action` (`person`, else the caller's person, and the caller's key), where, in which
    request — for an HTTP route or an MCP tool alike."""
    who = person or (access.person if access is not None else None)
    rid = request_id_var.get()
    return AuditEntry(
        action,
        user_id=who.person_id if who else None,
        user_name=who.name if who else None,
        key_id=access.key_id if access is not None else None,
        space_id=space_id,
        doc_id=doc_id,
        conversation_id=conversation_id,
        route=route,
        client=client,
        request_id=None if rid in ("", "-") else rid,
        detail=detail,
    )


async def record(request: Request, access: Access | None, action: Action, **about: Any) -> None:
    """Append one entry for this request; `about` as `entry` takes it (person, space_id, doc_id,
    conversation_id, detail)."""
    await request.app.state.assistant.identity.record(entry(request.scope, access, action, **about))
