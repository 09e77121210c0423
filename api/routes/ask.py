"""Questions over a space (RAG)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.schemas import AskRequest, AskResponse, ErrorResponse, SourceOut

router = APIRouter(tags=["answers"])


@router.post("/ask", response_model=AskResponse, responses={c: {"model": ErrorResponse} for c in (403, 422, 503)})
async def ask(body: AskRequest, assistant: AssistantDep, access: AccessDep) -> AskResponse:
    """Answer from the space's best chunks, in the language of the question. `auto` summarizes the
    context first when it exceeds the model's threshold, `summarize` always does, `direct` never."""
    access.check_space(body.space_id)
    result = await assistant.ask(body.q, body.space_id, body.mode, body.top_k)
    return AskResponse(
        answer=result.answer,
        mode=body.mode,
        summarized=result.summarized,
        context_tokens=result.context_tokens,
        language=result.language,
        sources=[SourceOut(**asdict(s)) for s in result.sources],
        timing=result.timing,
        usage=result.usage,
    )
