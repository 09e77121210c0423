"""FastAPI dependencies: hand routes the assistant and the caller's access."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from docassist.api.auth import Access, caller_access, require_key
from docassist.pipelines.assistant import Assistant


def get_assistant(request: Request) -> Assistant:
    return request.app.state.assistant


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
AccessDep = Annotated[Access, Depends(require_key)]
CallerDep = Annotated[Access, Depends(caller_access)]  # open routes: whoever calls, key or not
