"""Health and model configuration."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from docassist.api.deps import AccessDep, AssistantDep, CallerDep
from docassist.api.schemas import error_responses
from docassist.api.service_schemas import EndpointConfig, HealthChecks, HealthResponse, ModelConfigResponse
from docassist.pipelines.errors import InvalidInput
from docassist.pipelines.health import CAPABILITIES

router = APIRouter(tags=["service"])


def _status_code(serving: bool) -> int:
    """What a load balancer acts on: 200 keeps this instance in its pool, 503 takes it out."""
    return 200 if serving else 503


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={
        503: {
            "model": HealthResponse,
            "description": "the vector store or the database is down, an LLM endpoint is "
            "stalled, or a capability named in `require` is down (the embedding server's being gone "
            "takes ingest, search and answers down)",
        },
        **error_responses(422),
    },
)
async def health(
    assistant: AssistantDep,
    caller: CallerDep,
    require: str = Query(
        default="",
        description="comma-separated capabilities (ingest, search, summaries, answers) that must not be down, else 503",
    ),
) -> JSONResponse:
    """What works now, capability by capability. 200 while the service can serve (`ok` or
    `degraded`: an LLM endpoint down or restarting leaves ingest and search working); 503 when
    the vector store is down or an LLM endpoint is stalled (it accepts calls and makes no
    progress). Open even when API keys are set; what failed and where only with a key for every
    space (or when no keys are set)."""
    wanted = tuple(c.strip() for c in require.split(",") if c.strip())
    unknown = sorted(set(wanted) - set(CAPABILITIES))
    if unknown:
        raise InvalidInput(f"unknown capability {', '.join(unknown)}; choose from {', '.join(CAPABILITIES)}")
    report = await assistant.health(details=caller.operator)
    body = HealthResponse(
        status=report.status,
        capabilities=report.capabilities,
        checks=HealthChecks(
            vector_store=asdict(report.vector_store),
            database=asdict(report.database),
            redis=asdict(report.redis) if report.redis else None,
            llm={name: {**asdict(h), "ok": h.ok} for name, h in report.llm.items()},
            embedding=asdict(report.embedding) if report.embedding else None,
        ),
        reasons=report.reasons,
    )
    status = _status_code(report.serving(wanted))
    return JSONResponse(body.model_dump(mode="json"), status_code=status)  # type: ignore[arg-type]


@router.head("/health", include_in_schema=False)
async def health_head(assistant: AssistantDep, caller: CallerDep) -> Response:
    """`/health`'s status with no body, for probes that send HEAD."""
    report = await assistant.health(details=caller.operator)
    return Response(status_code=_status_code(report.serving()))


@router.get("/model-config", response_model=ModelConfigResponse, responses=error_responses(401, 404))
async def model_config(
    assistant: AssistantDep,
    access: AccessDep,
    endpoint: str | None = Query(default=None, description="endpoint name; default: the one that answers"),
) -> ModelConfigResponse:
    """The model in force for an endpoint (default: the one that answers), and all endpoints:
    models, windows and limits; the servers' addresses only for a key for every space."""
    cfg = assistant.model_config(endpoint, internals=access.operator)
    chosen = cfg.endpoint
    return ModelConfigResponse(
        model_name=chosen.model_name,
        provider=chosen.provider,
        context_window=chosen.context_window,
        summarization_threshold=chosen.summarization_threshold,
        summarization_max_output=chosen.summarization_max_output,
        endpoint=chosen.name,
        profile=cfg.profile,
        max_tokens=cfg.max_tokens,
        routing=cfg.routing,
        endpoints={n: EndpointConfig.model_validate(asdict(e)) for n, e in cfg.endpoints.items()},
    )
