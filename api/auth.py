"""Optional API keys: with `API_KEYS` set, every route but `/health` (and the web page and the
API description) needs a key — `Authorization: Bearer <key>` or `X-API-Key: <key>` — and a key
may be limited to certain spaces. `RequestGuard` checks the key before the body is read; routes
check the space they are asked about."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from docassist.pipelines.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Access:
    spaces: frozenset[str] | None  # None: every space

    def check_space(self, space_id: str) -> str:
        if self.spaces is not None and space_id not in self.spaces:
            raise Forbidden(f"this API key has no access to space {space_id!r}", space_id=space_id)
        return space_id


OPEN = Access(spaces=None)


def access_for(headers: dict[bytes, bytes], keys: dict[str, frozenset[str] | None]) -> Access | None:
    """The access a request's key grants, or None when it carries no valid key."""
    header = headers.get(b"authorization", b"").decode("latin-1")
    given = (
        header[7:].strip() if header.lower().startswith("bearer ") else headers.get(b"x-api-key", b"").decode("latin-1")
    )
    if not given:
        return None
    found: Access | None = None
    for key, spaces in keys.items():
        if hmac.compare_digest(given.encode("latin-1", "replace"), key.encode("latin-1", "replace")):
            found = Access(spaces=spaces)
    return found


def require_key(request: Request) -> Access:
    """The caller's access, as `RequestGuard` resolved it from the headers."""
    access = request.scope.get("state", {}).get("access")
    if access is None:  # the guard always sets it; a request that got here without it has no key
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")
    return access
