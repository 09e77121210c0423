"""Retrieval alone, no LLM."""

from __future__ import annotations

from fastapi import APIRouter

from docassist.api.deps import AccessDep, RuntimeDep
from docassist.api.schemas import ErrorResponse, SearchRequest, SearchResponse, SourceOut

router = APIRouter(tags=["retrieval"])


@router.post("/search", response_model=SearchResponse, responses={422: {"model": ErrorResponse}})
async def search(body: SearchRequest, runtime: RuntimeDep, access: AccessDep) -> SearchResponse:
    """The space's `top_k` best chunks for `q`: dense (multilingual-e5) and BM25 candidates
    fused by reciprocal rank inside Qdrant."""
    access.check_space(body.space_id)
    result = await runtime.retriever.search(body.q, body.space_id, body.top_k)
    return SearchResponse(sources=[SourceOut(**s.__dict__) for s in result.sources], timing=result.timing)
