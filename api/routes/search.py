"""Retrieval alone, no LLM."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from docassist.api.audit_trail import record
from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.schemas import SearchRequest, SearchResponse, SourceOut, error_responses
from docassist.pipelines.identity.audit import question

router = APIRouter(tags=["retrieval"])


_ERRORS = error_responses(401, 403, 408, 409, 413, 422, 429, 503)


@router.post("/search", response_model=SearchResponse, responses=_ERRORS)
async def search(body: SearchRequest, request: Request, assistant: AssistantDep, access: AccessDep) -> SearchResponse:
    """The space's `top_k` best chunks for `q`: dense (multilingual-e5) and BM25 candidates fused
    inside Qdrant (distribution-based score fusion). No LLM is involved. `q` is at most 4,000
    characters and 512 of the embedding model's tokens; a key has at most `SEARCH_PER_KEY` searches
    in flight (429 past it)."""
    access.check_space(body.space_id)
    scope = body.scope()
    await record(request, access, "search", space_id=body.space_id, detail=question(body.q))
    with assistant.admit("search", access.holder):
        result = await assistant.search(body.q, body.space_id, body.top_k, scope)
    return SearchResponse(sources=[SourceOut(**asdict(s)) for s in result.sources], timing=asdict(result.timing))
