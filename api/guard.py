"""Refuse before reading: requests without a valid key, and bodies over the limit.

Runs before routing, as plain ASGI, on the request's headers (and, for a session cookie or a
personal token, one look-up in the database — `api/callers.py`):
- with `API_KEYS` set or sign-in configured, a request without a valid key, token or session gets
  401 at once — its body is never read (only `/health`, the web page, the API description and the
  sign-in routes are open); an ended session's cookie gets 401 `session_expired`;
- a state-changing request riding a session cookie whose `Origin` names another site gets 403
  `cross_site_request`, as does a sign-in posted from another site (keys and tokens in headers
  are not affected); with `METRICS_KEY` set,
  `/metrics` needs it or a key for every space, whether or not `API_KEYS` is set; with
  `METRICS_LOOPBACK` set, a scraper on the same host reads `/metrics` without a key — a peer on
  the loopback interface whose request no proxy forwarded (no `X-Forwarded-For`, `Forwarded` or
  `X-Real-IP`: a reverse proxy on the same host is a loopback peer too);
- a body that declares (Content-Length) more than its route takes gets 413 at once;
- a body that turns out longer than declared, or is sent chunked, is cut off the moment it
  passes the limit: reading stops and the route answers 413. Nothing past the limit is
  buffered or spooled to disk.
The resolved caller (`Access`) is left in the request's state for the routes' space checks.
"""

from __future__ import annotations

import ipaddress

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docassist.api.auth import NOBODY, OPEN, SCRAPER, Access, is_metrics_key
from docassist.api.callers import Callers
from docassist.api.errors import envelope_response, retry_after_s, status_of
from docassist.pipelines.errors import DocassistError, SessionExpired
from docassist.pipelines.keys import digest_of

UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries and the form's other fields
JSON_BODY_LIMIT_BYTES = 1024 * 1024  # every JSON route takes a small body (a question is at most 4,000 characters)
# but a folder's file list (`POST /sync/diff`): 100,000 files with paths of about 200 characters
SYNC_PATH, SYNC_BODY_LIMIT_BYTES = "/sync/diff", 32 * 1024 * 1024
OPEN_PATHS = ("/health", "/docs", "/openapi.json", "/auth/config", "/auth/login", "/auth/logout")
STATIC = "/static/"
OPEN_PREFIXES = (STATIC, "/auth/oidc/")


_NEEDED_KEY = "a valid API key is required (Authorization: Bearer <key> or X-API-Key)"
_NEEDED_SIGN_IN = "sign in, or send a personal token or an API key (Authorization: Bearer …)"
_FORWARDED = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def _local_peer(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """A client on this host that no proxy forwarded."""
    client = scope.get("client")
    if not client or any(name in headers for name in _FORWARDED):
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def is_open(path: str) -> bool:
    return path == "/" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        callers: Callers,
        upload_limit_bytes: int,
        metrics_key: str | None = None,
        metrics_loopback: bool = False,
    ) -> None:
        self.app, self.callers = app, callers
        self.upload_limit = upload_limit_bytes + UPLOAD_OVERHEAD_BYTES
        self.metrics_digest = digest_of(metrics_key) if metrics_key else None
        self.metrics_loopback = metrics_loopback

    def limit_for(self, path: str) -> int:
        if path == SYNC_PATH:
            return SYNC_BODY_LIMIT_BYTES
        return self.upload_limit if path == "/ingest" else JSON_BODY_LIMIT_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        resolved = await self._caller(scope, headers, path)
        if not isinstance(resolved, Access):
            await resolved(scope, receive, send)
            return
        scope.setdefault("state", {})["access"] = resolved
        limit = self.limit_for(path)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = envelope_response(
                413,
                "too_large",
                f"the request body declares {int(declared):,} bytes, more than {_what(path)} allows ({limit:,} bytes)",
                details={"limit_bytes": limit, "declared_bytes": int(declared)},
                close=True,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit, path), send)

    async def _caller(self, scope: Scope, headers: dict[bytes, bytes], path: str) -> Access | ASGIApp:
        """Who calls, or the response that refuses them (401, 403, or 503 while the database or the
        directory is away)."""
        if path == "/metrics" and (
            is_metrics_key(headers, self.metrics_digest) or (self.metrics_loopback and _local_peer(scope, headers))
        ):
            return SCRAPER
        if path.startswith(STATIC):
            return NOBODY  # the page's own files: the same for everyone, no session read for them
        if not (self.callers.required or (path == "/metrics" and self.metrics_digest is not None)):
            return OPEN
        expired = False
        try:
            access = await self.callers.resolve(headers)
        except SessionExpired:
            access, expired = None, True
        except DocassistError as exc:
            status = status_of(exc)
            retry = {"Retry-After": str(retry_after_s(exc, status))} if status in (429, 503) else None
            return envelope_response(status, exc.code, exc.message, exc.details, headers=retry, close=True)
        if access is None and is_open(path):
            access = NOBODY  # open routes answer, showing nothing that needs a credential
        if access is None:
            code, message = (
                ("session_expired", "your session has ended; sign in again")
                if expired
                else ("unauthorized", _NEEDED_SIGN_IN if self.callers.sign_in else _NEEDED_KEY)
            )
            return envelope_response(401, code, message, headers={"WWW-Authenticate": "Bearer"}, close=True)
        # a sign-in from another site is refused too: it would sign the browser in as someone else
        riding = access.via == "session" or path == "/auth/login"
        if riding and self.callers.cross_site(scope["method"], headers):
            return envelope_response(
                403,
                "cross_site_request",
                "a request that changes something, riding a session cookie, came from another site; it is refused",
                close=True,
            )
        return access


def _what(path: str) -> str:
    if path == SYNC_PATH:
        return "a folder's file list"
    return "MAX_UPLOAD_MB" if path == "/ingest" else "the JSON body limit"


class BodyTooLarge(HTTPException):
    """Raised from `receive` while a route reads its body: FastAPI passes HTTP exceptions through
    its body parsing untouched, so the error handler answers 413 `too_large`."""

    def __init__(self, limit: int, path: str) -> None:
        super().__init__(413, f"the request body is larger than {_what(path)} allows ({limit:,} bytes)")


def _counting(receive: Receive, limit: int, path: str) -> Receive:
    """`receive` that stops a body at `limit` bytes: the route's body reader raises `TooLarge`."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, path)
        return message

    return wrapped
