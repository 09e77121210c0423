"""One exception handler turns typed errors into the error envelope of SPEC.md section 3.

Routes raise; they never build error JSON by hand.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from docassist.pipelines import errors as e
from docassist.pipelines.logs import event

STATUS: dict[type[e.DocassistError], int] = {
    e.UnsupportedMediaType: 415,
    e.NoText: 422,
    e.UnreadableDocument: 422,
    e.TooLarge: 413,
    e.InvalidInput: 422,
    e.NotFound: 404,
    e.Unauthorized: 401,
    e.Forbidden: 403,
    e.LLMUnavailable: 503,
    e.ContextOverflow: 422,
    e.VectorStoreUnavailable: 503,
}
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def status_of(exc: e.DocassistError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.DocassistError)
    async def _typed(_: Request, exc: e.DocassistError) -> JSONResponse:
        status = status_of(exc)
        event(
            f"[ERROR] {exc.code}",
            exc.message,
            level=40 if status >= 500 else 30,
            code=exc.code,
            status=status,
        )
        return JSONResponse(envelope(exc.code, exc.message, exc.details), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                reason = err.get("ctx", {}).get("error", "")
                problems.append({"field": "body", "problem": f"malformed JSON ({reason})"})
                continue
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form")]
            problems.append({"field": ".".join(loc) or "body", "problem": err.get("msg")})
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems) or "invalid request"
        return JSONResponse(envelope("invalid_input", message, {"errors": problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(envelope(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        event("[ERROR] internal_error", f"{type(exc).__name__}: {exc}", level=40, exc_info=exc)
        return JSONResponse(envelope("internal_error", f"{type(exc).__name__}: {exc}"), status_code=500)
