"""FastAPI dependencies: hand routes the runtime and the caller's access."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from docassist.api.auth import Access, require_key
from docassist.pipelines.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
AccessDep = Annotated[Access, Depends(require_key)]
