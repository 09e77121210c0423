"""The FastAPI application: a thin shim over `pipelines.assistant.Assistant`.

`lifespan` starts what the service owns (the llama.cpp server on the local profile, the
embedding model, the Qdrant client) and stops it on shutdown.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics
from prometheus_fastapi_instrumentator.metrics import Info
from starlette.routing import BaseRoute, Mount

from docassist.api import mcp_server
from docassist.api.body_deadline import BodyDeadline
from docassist.api.callers import Callers
from docassist.api.connections import configure as configure_connections
from docassist.api.disconnect import CancelOnDisconnect
from docassist.api.errors import install_error_handlers
from docassist.api.guard import RequestGuard
from docassist.api.middleware import BrowserHeadersMiddleware, JsonBodyMiddleware, RequestLogMiddleware
from docassist.api.openai_errors import OpenAIErrorShape
from docassist.api.routes import (
    ask,
    audit,
    auth,
    conversations,
    documents,
    feedback,
    health,
    jobs,
    metrics,
    openai_compat,
    page,
    search,
    summaries,
    sync,
    versions,
)
from docassist.pipelines import metrics as service_metrics
from docassist.pipelines import tracing
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.keys import describe
from docassist.pipelines.lifelines import watch_parent
from docassist.pipelines.logs import configure_logging, event
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.settings import Settings, load_settings


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    """The service over `settings`. With `assistant`, the app serves one its caller has built and
    started (and will stop): the routes run in-process over the real pipelines, as the tests do
    with several apps over one runtime; without, the app builds the runtime and its lifespan
    starts and stops it."""
    settings = settings or load_settings()
    if assistant is None:  # a caller with a runtime of its own has its logging configured already
        configure_logging(settings.log_format)
    _log_keys(settings)
    # each worker of `serve --workers N` runs this: the protocols' settings are not carried to them
    configure_connections(settings.header_timeout_s, settings.max_connections, settings.max_in_flight)
    runtime: Runtime | None = None
    if assistant is None:
        runtime = Runtime(settings)
        assistant = Assistant(runtime)
    callers = Callers(settings.api_keys, assistant.identity, assistant.identity.config.oidc.public_url)
    mcp = mcp_server.build(assistant, callers)
    app = FastAPI(
        title="docassist",
        version="0.1.0",
        summary="Whole-document summaries and answers over your documents, in their language.",
        lifespan=_lifespan(runtime, mcp),
        docs_url=None,  # served by routes/page.py from the installed Swagger UI, not a CDN
        redoc_url=None,
    )
    app.state.assistant = assistant
    _add_middleware(app, settings, callers)
    install_error_handlers(app)
    _instrument(app)
    for router in (
        health.router,
        auth.router,
        audit.router,
        documents.router,
        search.router,
        summaries.router,
        ask.router,
        conversations.router,
        feedback.router,
        versions.router,
        sync.router,
        jobs.router,
        metrics.router,
        openai_compat.router,
        page.router,
    ):
        app.include_router(router)
    app.router.routes.extend(mcp_server.routes(mcp))
    page.mount(app)
    return app


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _lifespan(runtime: Runtime | None, mcp: mcp_server.DocassistMCP) -> Lifespan:
    """What the app runs around serving: the MCP session manager, and the runtime it owns (none
    when its caller started one and will stop it)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor = os.environ.get("DOCASSIST_SUPERVISOR_PID")
        if supervisor:  # a worker of `serve --workers N`: a graceful stop once the supervisor is gone
            watch_parent(int(supervisor), lambda: os.kill(os.getpid(), signal.SIGTERM))
        if runtime is None:
            async with mcp.session_manager.run():
                yield
            return
        try:
            await runtime.start()
            async with mcp.session_manager.run():
                yield
        finally:
            await runtime.stop()
            tracing.shutdown()
            service_metrics.process_stopped()

    return lifespan


def _log_keys(settings: Settings) -> None:
    if settings.api_keys:
        event(
            f"[STARTUP] API keys: {len(settings.api_keys)}", *describe(settings.api_keys), keys=len(settings.api_keys)
        )
    else:
        event(
            "[STARTUP] API keys: none",
            "API_KEYS is not set: every route is open to whoever reaches this port",
            level=logging.WARNING,
        )


def _add_middleware(app: FastAPI, settings: Settings, callers: Callers) -> None:
    """Innermost first: the request log (added last) sees every answer, refusals included."""
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(BodyDeadline, total_s=settings.body_timeout_s, idle_s=settings.body_idle_timeout_s)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(
        RequestGuard,
        callers=callers,
        upload_limit_bytes=settings.max_upload_bytes,
        metrics_key=settings.metrics_key,
        metrics_loopback=settings.metrics_loopback,
    )
    app.add_middleware(OpenAIErrorShape)
    app.add_middleware(BrowserHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware)


def _instrument(app: FastAPI) -> None:
    """Requests and latency by route template and status for `/metrics` (outermost, so refusals
    by the guard count too); with `OTEL_EXPORTER_OTLP_ENDPOINT`, a span per request."""
    instrumentator = Instrumentator(should_group_status_codes=False, excluded_handlers=["/metrics"])
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
    recorders = [r for r in (http_metrics.requests(), http_metrics.latency(buckets=buckets)) if r is not None]
    # the app's routes are all in place by its first request, which is when this is first asked
    templates = functools.cache(lambda: _route_templates(app.routes))
    instrumentator.add(_with_closed_labels(recorders, templates))
    instrumentator.instrument(app)
    if tracing.configure():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # no span per ASGI message: a streamed answer would otherwise be one span per delta
        FastAPIInstrumentor.instrument_app(app, excluded_urls="health,metrics", exclude_spans=["receive", "send"])


def _with_closed_labels(
    recorders: list[Callable[[Info], None]], templates: Callable[[], frozenset[str]]
) -> Callable[[Info], None]:
    """The recorders with labels from closed sets whatever a client sends: a method outside the
    standard ones is `other`, a handler that is not one of the app's route templates `none`. The
    instrumentator names a path none takes `none` already, but one that the router would redirect
    (`/jobs/<anything>/`, to the template without its slash) by the path itself: a series each."""

    def record(info: Info) -> None:
        info.method = service_metrics.http_method(info.method)
        if info.modified_handler not in templates():
            info.modified_handler = service_metrics.UNROUTED
        for recorder in recorders:
            recorder(info)

    return record


def _route_templates(routes: Sequence[BaseRoute]) -> frozenset[str]:
    """Every handler the instrumentator names a routed request by: each route's path template, and
    a mount's path followed by its own routes' (or alone, for an app such as StaticFiles)."""
    names: set[str] = set()
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # a router FastAPI included
        if callable(contexts):
            names |= _route_templates([getattr(c, "starlette_route", None) or c for c in contexts()])
        elif isinstance(route, Mount):
            names |= {route.path + child for child in _route_templates(route.routes)} or {route.path}
        elif isinstance(path := getattr(route, "path", None), str):
            names.add(path)
    return frozenset(names)
