"""Questions over a space (RAG)."""

from __future__ import annotations

from fastapi import APIRouter

from docassist.api.deps import AccessDep, RuntimeDep
from docassist.api.schemas import AskRequest, AskResponse, ErrorResponse
from docassist.pipelines.errors import InvalidInput

router = APIRouter(tags=["answers"])


@router.post("/ask", response_model=AskResponse, responses={c: {"model": ErrorResponse} for c in (422, 503)})
async def ask(body: AskRequest, runtime: RuntimeDep, access: AccessDep) -> AskResponse:
    """Answer from the space's best chunks, in the language of the question. `auto` summarizes the
    context first when it exceeds the model's threshold, `summarize` always does, `direct` never."""
    access.check_space(body.space_id)
    if not body.q.strip():
        raise InvalidInput("q must not be empty")
    return AskResponse(**await runtime.ask(body.q, body.space_id, body.mode, body.top_k))
