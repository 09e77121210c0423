"""One exception handler per kind turns errors into the error envelope
`{"error": {"code", "message", "details"}}` with the status the code stands for.

Routes raise; they never build error JSON by hand. An unexpected exception gives 500 with the
request id only: its details go to the log, not to the client.

`STATUS` (a typed error's status, by class) and `_HTTP_CODES` (the codes of answers no typed error
makes) are the one list of codes: `codes_by_status` reads them for `/openapi.json`, and a test holds
docs/API.md to them.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from docassist.api.audit_trail import record
from docassist.pipelines import errors as e
from docassist.pipelines.health_monitor import REFRESH_S
from docassist.pipelines.logs import event, request_id_var

UNAVAILABLE_RETRY_S = REFRESH_S

STATUS: dict[type[e.DocassistError], int] = {
    e.UnsupportedMediaType: 415,
    e.NoText: 422,
    e.UnreadableDocument: 422,
    e.EncryptedDocument: 422,
    e.OcrUnavailable: 422,
    e.TooDeeplyNested: 422,
    e.TooLarge: 413,
    e.UnsupportedValue: 400,
    e.InvalidInput: 422,
    e.NotFound: 404,
    e.NotReady: 409,
    e.Unauthorized: 401,
    e.Forbidden: 403,
    e.LLMUnavailable: 503,
    e.ContextOverflow: 422,
    e.VectorStoreUnavailable: 503,
    e.StoreUnavailable: 503,
    e.EmbedderUnavailable: 503,
    e.IdentityProviderUnavailable: 503,
    e.Cancelled: 503,
    e.SummarizationStalled: 422,
    e.SearchQueueFull: 503,
    e.TooBusy: 429,
}
# the code of an HTTP error Starlette raises (a route that does not exist, a body that timed out…), by status
_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}
TOO_MANY_CONNECTIONS = "too_many_connections"  # 503 from the connection cap, before any app runs
BUSY = "busy"  # 503 when MAX_IN_FLIGHT recent requests run, before any middleware
BUSY_RETRY_S = 1
_BODY_PARSE_ERROR = "There was an error parsing the body"


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def envelope_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    close: bool = False,
) -> JSONResponse:
    """The envelope as a response; `close` when the request's body was left unread."""
    all_headers = {**(headers or {}), **({"Connection": "close"} if close else {})}
    return JSONResponse(envelope(code, message, details), status_code=status, headers=all_headers or None)


def _body_problem(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "it is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    return "it is malformed"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _methods_for(request: Request) -> list[str]:
    """Every method some route answers on this request's path, asked of the router itself."""
    routes = request.app.router.routes
    return [m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes)]


def status_of(exc: e.DocassistError) -> int:
    return _status_of_class(type(exc))


def _status_of_class(error: type[e.DocassistError]) -> int:
    for cls in error.__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _typed_errors(root: type[e.DocassistError] = e.DocassistError) -> list[type[e.DocassistError]]:
    """`root` and every error class below it."""
    return [root, *(cls for sub in root.__subclasses__() for cls in _typed_errors(sub))]


def codes_by_status() -> dict[int, list[str]]:
    """Every code an answer can carry, by its status: each typed error's, and those the HTTP layer
    answers with itself."""
    found: defaultdict[int, set[str]] = defaultdict(set)
    for cls in _typed_errors():
        found[_status_of_class(cls)].add(cls.code)
    for status, code in _HTTP_CODES.items():
        found[status].add(code)
    found[503].update((TOO_MANY_CONNECTIONS, BUSY))
    return {status: sorted(codes) for status, codes in sorted(found.items())}


def retry_after_s(exc: e.DocassistError, status: int) -> int:
    """When to ask again: a refusal says its own wait; an unavailable store, embedder or LLM
    server the health refresh interval, after which `/health` has checked it again."""
    return exc.retry_after_s if isinstance(exc, e.TooBusy | e.NotReady) else UNAVAILABLE_RETRY_S


async def _denied(request: Request, exc: e.Forbidden) -> None:
    access = request.scope.get("state", {}).get("access")
    space = exc.details.get("space_id")
    with contextlib.suppress(e.DocassistError):  # the database away: the refusal is answered all the same
        where = space if isinstance(space, str) else None
        await record(request, access, "access_denied", space_id=where, detail=exc.message[:200])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.DocassistError)
    async def _typed(request: Request, exc: e.DocassistError) -> JSONResponse:
        status = status_of(exc)
        if isinstance(exc, e.Forbidden):  # refused for want of a right: who tried what, where
            await _denied(request, exc)
        event(
            f"[ERROR] {exc.code}",
            exc.message,
            level=logging.ERROR if status >= 500 else 30,
            code=exc.code,
            status=status,
        )
        waits = status in (429, 503) or isinstance(exc, e.NotReady)
        headers = {"Retry-After": str(retry_after_s(exc, status))} if waits else None
        return envelope_response(status, exc.code, exc.message, exc.details, headers=headers)

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
        return envelope_response(422, "invalid_input", message, {"errors": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_ERROR:
            reason = _body_problem(exc.__cause__)
            return envelope_response(
                422,
                "invalid_input",
                f"the body is not JSON docassist can read: {reason}",
                {"errors": [{"field": "body", "problem": reason}]},
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names the methods of the first route on the path only
            headers["Allow"] = ", ".join(_methods_for(request))
        close = exc.status_code in (408, 413)  # the body was left unread: the connection cannot carry another request
        return envelope_response(exc.status_code, code, str(exc.detail), headers=headers, close=close)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        rid = request_id_var.get()
        event("[ERROR] internal_error", f"{type(exc).__name__}: {exc}", level=logging.ERROR, exc_info=exc)
        return envelope_response(
            500,
            e.DocassistError.code,  # internal_error: what any error without a code of its own answers
            f"an internal error; the service log has its details under request id {rid}",
            {"request_id": rid},
        )
