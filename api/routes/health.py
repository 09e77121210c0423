"""Health and model configuration."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from docassist.api.deps import AccessDep, RuntimeDep
from docassist.api.schemas import HealthResponse, ModelConfigResponse

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Checks the vector store and every LLM endpoint. 503 when the service cannot serve:
    the vector store is down or no LLM endpoint answers. Open even when API keys are set."""
    report = await runtime.health()
    return JSONResponse(report, status_code=503 if report["status"] == "unavailable" else 200)


@router.get("/model-config", response_model=ModelConfigResponse)
async def model_config(
    runtime: RuntimeDep,
    _: AccessDep,
    endpoint: str | None = Query(default=None, description="endpoint name; default: answers"),
) -> dict:
    """The model in force for an endpoint (default: the one that answers), and all endpoints."""
    return runtime.model_config(endpoint)
