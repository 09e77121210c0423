"""Optional API keys: with `API_KEYS` set, every route but `/health` (and the web page and the
API reference) needs a key — `Authorization: Bearer <key>` or `X-API-Key: <key>` — and a key
may be limited to certain spaces (`pipelines/keys.py` reads and matches them). `RequestGuard`
checks the key before the body is read; routes check the space they are asked about.
`METRICS_KEY`, a key apart, reads `/metrics` and nothing else: what a Prometheus scraper holds."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from docassist.pipelines.errors import Forbidden, Unauthorized
from docassist.pipelines.keys import ApiKey, digest_of, find_key


@dataclass(frozen=True)
class Access:
    spaces: frozenset[str] | None  # None: every space
    holder: str = ""  # whom per-key limits count: the key's digest; "" (no keys set) is not limited
    scraper: bool = False  # carries METRICS_KEY: reads /metrics and nothing else

    @property
    def operator(self) -> bool:
        """Reaches every space (or no keys are configured): may see how the service is wired —
        internal addresses of LLM servers and stores."""
        return self.spaces is None

    @property
    def reads_metrics(self) -> bool:
        return self.operator or self.scraper

    def check_space(self, space_id: str) -> str:
        if self.spaces is not None and space_id not in self.spaces:
            raise Forbidden(f"this API key has no access to space {space_id!r}", space_id=space_id)
        return space_id


OPEN = Access(spaces=None)


NOBODY = Access(spaces=frozenset())
SCRAPER = Access(spaces=frozenset(), scraper=True)


def offered_key(headers: dict[bytes, bytes]) -> bytes:
    header = headers.get(b"authorization", b"")
    return header[7:].strip() if header[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"").strip()


def is_metrics_key(headers: dict[bytes, bytes], metrics_digest: bytes | None) -> bool:
    """The request carries METRICS_KEY (compared digest to digest, in constant time)."""
    given = offered_key(headers)
    return metrics_digest is not None and bool(given) and hmac.compare_digest(digest_of(given), metrics_digest)


def access_for(headers: dict[bytes, bytes], keys: tuple[ApiKey, ...]) -> Access | None:
    """The access a request's key grants, or None when it carries no valid key. The key is
    compared as the bytes sent, so a key is only ever the printable ASCII it was configured as."""
    given = offered_key(headers)
    key = find_key(given, keys)
    return None if key is None else Access(spaces=key.spaces, holder="key:" + key.digest.hex()[:16])


async def require_key(request: Request) -> Access:
    """The caller's access, as `RequestGuard` resolved it from the headers. Dependencies are
    coroutines: FastAPI runs a plain function in its thread pool, a thread hop per request."""
    access = request.scope.get("state", {}).get("access")
    if access is None:  # the guard always sets it; a request that got here without it has no key
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")
    return access


async def caller_access(request: Request) -> Access:
    """On an open route: what the caller's key (if any) reaches; `NOBODY` without a valid one."""
    return request.scope.get("state", {}).get("access") or NOBODY
