"""The audit trail, for the admins of a space (and of every space)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from docassist.api.auth_schemas import AuditEntryOut, AuditList
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.schemas import error_responses
from docassist.pipelines.identity.audit import MAX_PAGE, AuditFilter
from docassist.pipelines.spaces import SPACE_PATTERN

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditList, responses=error_responses(401, 403, 422, 503))
async def audit_trail(
    assistant: AssistantDep,
    access: AccessDep,
    space_id: Annotated[str | None, Query(pattern=SPACE_PATTERN)] = None,
    user: Annotated[
        str | None, Query(min_length=1, max_length=512, description="a person's id or name, or a key id")
    ] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[float | None, Query(description="unix seconds, inclusive")] = None,
    until: Annotated[float | None, Query(description="unix seconds, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
) -> AuditList:
    """Who did what, newest first, a page at a time (`next_cursor` continues): the entries of
    `space_id` for its admins; without `space_id`, every entry, for the admins of every space."""
    access.check_admin(space_id)
    where = AuditFilter(space_id=space_id, user=user, action=action, since=since, until=until)
    page = await assistant.identity.audit_page(where, limit, cursor)
    return AuditList(entries=[AuditEntryOut.model_validate(e) for e in page.entries], next_cursor=page.next_cursor)
