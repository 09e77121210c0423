"""Prometheus metrics of the service, for operators."""

from __future__ import annotations

from fastapi import APIRouter, Response

from docassist.api.deps import AccessDep, AssistantDep
from docassist.api.schemas import error_responses
from docassist.pipelines.errors import Forbidden

router = APIRouter(tags=["service"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 403)},
)
async def metrics(assistant: AssistantDep, access: AccessDep) -> Response:
    """Prometheus text: requests and latency by route and status, LLM calls and tokens by endpoint
    and kind, jobs by state, lanes, summary-cache hits, language retries, ingest speed. Its figures
    describe every space together, so with `API_KEYS` only a key for every space or `METRICS_KEY`
    reads it (403)."""
    if not access.reads_metrics:
        raise Forbidden("only a key for every space, or METRICS_KEY, reads /metrics")
    body, content_type = await assistant.metrics()
    return Response(body, media_type=content_type)
