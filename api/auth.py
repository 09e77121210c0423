"""Optional API keys (SPEC.md section 8): with `API_KEYS` set, every route but `/health`
needs a key (`Authorization: Bearer <key>` or `X-API-Key: <key>`), and a key may be
limited to certain spaces."""

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


def require_key(request: Request) -> Access:
    keys: dict[str, frozenset[str] | None] = request.app.state.assistant.settings.api_keys
    if not keys:
        return OPEN
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    for key, spaces in keys.items():
        if given and hmac.compare_digest(given.encode(), key.encode()):
            return Access(spaces=spaces)
    raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")
