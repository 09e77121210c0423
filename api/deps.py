"""FastAPI dependencies: hand routes the assistant and the caller's access. Each is a coroutine:
FastAPI runs a plain function dependency in its thread pool, a thread hop for every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from docassist.api.auth import Access, caller_access, require_key
from docassist.pipelines.assistant import Assistant


async def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
AccessDep = Annotated[Access, Depends(require_key)]
CallerDep = Annotated[Access, Depends(caller_access)]  # open routes: whoever calls, key or not
