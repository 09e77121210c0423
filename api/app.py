"""The FastAPI application: a thin shim over `pipelines.assistant.Assistant`.

`lifespan` starts what the service owns (the llama.cpp server on the local profile, the
embedding model, the Qdrant client) and stops it on shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from docassist.api.body_deadline import BodyDeadline
from docassist.api.connections import configure as configure_connections
from docassist.api.disconnect import CancelOnDisconnect
from docassist.api.errors import install_error_handlers
from docassist.api.guard import RequestGuard
from docassist.api.middleware import BrowserHeadersMiddleware, JsonBodyMiddleware, RequestLogMiddleware
from docassist.api.routes import ask, documents, health, jobs, page, search, summaries
from docassist.pipelines.assistant import Assistant
from docassist.pipelines.keys import describe
from docassist.pipelines.lifelines import watch_parent
from docassist.pipelines.logs import configure_logging, event
from docassist.pipelines.runtime import Runtime
from docassist.pipelines.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_format)
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
    configure_connections(settings.header_timeout_s)  # each worker of `serve --workers N` runs this
    runtime = Runtime(settings)
    assistant = Assistant(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        supervisor = os.environ.get("DOCASSIST_SUPERVISOR_PID")
        if supervisor:  # a worker of `serve --workers N`: a graceful stop once the supervisor is gone
            watch_parent(int(supervisor), lambda: os.kill(os.getpid(), signal.SIGTERM))
        try:
            await runtime.start()
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="docassist",
        version="0.1.0",
        summary="Whole-document summaries and answers over your documents, in their language.",
        lifespan=lifespan,
        docs_url=None,  # served by routes/page.py from the installed Swagger UI, not a CDN
        redoc_url=None,
    )
    app.state.assistant = assistant
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(BodyDeadline, total_s=settings.body_timeout_s, idle_s=settings.body_idle_timeout_s)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(RequestGuard, keys=settings.api_keys, upload_limit_bytes=settings.max_upload_bytes)
    app.add_middleware(BrowserHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware)
    install_error_handlers(app)
    for router in (
        health.router,
        documents.router,
        search.router,
        summaries.router,
        ask.router,
        jobs.router,
        page.router,
    ):
        app.include_router(router)
    page.mount(app)
    return app
