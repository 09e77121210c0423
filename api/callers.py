"""Who a request is, from its headers alone: the one resolver `RequestGuard` and the MCP tools use.

A credential in a header comes first — a personal token (`Bearer dat_…`) or an API key — as a
script sends it; then the session cookie, as a browser sends it. A cookie counts only where
sign-in is configured; a token only where people exist to own one.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from docassist.api.auth import OPEN, SESSION_COOKIE, Access, access_for, of_caller, offered_key
from docassist.pipelines.identity.service import Identity
from docassist.pipelines.identity.tokens import is_personal_token
from docassist.pipelines.keys import ApiKey

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_cookie(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw.decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


class Callers:
    def __init__(self, keys: tuple[ApiKey, ...], identity: Identity | None, public_url: str | None = None) -> None:
        self.keys, self.identity = keys, identity
        self.public_origin = _origin(public_url) if public_url else None

    @property
    def sign_in(self) -> bool:
        return self.identity is not None and self.identity.sign_in

    @property
    def required(self) -> bool:
        """Requests need a credential: API keys are configured, or people sign in."""
        return bool(self.keys) or self.sign_in

    async def resolve(self, headers: dict[bytes, bytes]) -> Access | None:
        """The caller's access; None when no valid credential comes with the request. A session
        cookie that has ended raises `SessionExpired` (when no header credential is sent)."""
        if not self.required:
            return OPEN
        given = offered_key(headers)
        if given:
            text = given.decode("latin-1")
            if is_personal_token(text) and self.sign_in:
                assert self.identity is not None
                caller = await self.identity.by_token(text)
                return of_caller(caller) if caller is not None else None
            return access_for(given, self.keys)
        cookie = session_cookie(headers) if self.sign_in else None
        if cookie is not None:
            assert self.identity is not None
            return of_caller(await self.identity.by_session(cookie))
        return None

    def cross_site(self, method: str, headers: dict[bytes, bytes]) -> bool:
        """A state-changing request whose `Origin` names another site than this service (by its
        Host, or PUBLIC_URL behind a proxy) — or, without `Origin`, that the browser marks cross-site."""
        if method in SAFE_METHODS:
            return False
        origin = headers.get(b"origin")
        if origin is None:
            return headers.get(b"sec-fetch-site", b"") == b"cross-site"
        given = origin.decode("latin-1").strip().lower()
        if given == "null":
            return True
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        parts = urlsplit(given)
        return not (
            (host and parts.netloc == host) or (self.public_origin is not None and _origin(given) == self.public_origin)
        )


def _origin(url: str) -> str:
    parts = urlsplit(url.strip().lower())
    return f"{parts.scheme}://{parts.netloc}"
