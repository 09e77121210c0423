"""Who calls, and what they may do where.

Three kinds of caller, resolved by `RequestGuard` from the request's headers before its body is
read, and left in the request's state as an `Access`:
- a **person**, signed in through the directory or the OpenID provider: a session cookie
  (`docassist_session`) or one of their personal tokens (`Authorization: Bearer dat_…`), with the
  rights their groups give them now (`pipelines/identity`);
- an **API key** (`API_KEYS`; `Authorization: Bearer <key>` or `X-API-Key`): for services and
  scripts, every right in the spaces it names;
- nobody, on a service with neither keys nor sign-in: every right everywhere, as before keys.
`METRICS_KEY`, a key apart, reads `/metrics` and nothing else: what a Prometheus scraper holds.
Routes check the space and the role a request needs with `check_space`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from docassist.pipelines.errors import Forbidden, Unauthorized
from docassist.pipelines.identity.people import Person
from docassist.pipelines.identity.rules import EVERYTHING, NOTHING, WHAT, Rights, Role, everywhere, in_spaces, rank
from docassist.pipelines.identity.service import Caller
from docassist.pipelines.keys import ApiKey, digest_of, find_key

SESSION_COOKIE = "docassist_session"
Via = Literal["open", "key", "session", "token", "none"]


@dataclass(frozen=True)
class Access:
    rights: Rights
    holder: str = ""  # whom per-caller limits count: "key:<digest>" or "person:<id>"; "" (open) is not limited
    scraper: bool = False  # carries METRICS_KEY: reads /metrics and nothing else
    via: Via = "open"
    person: Person | None = None
    key_id: str | None = None  # an API key's digest prefix: how the audit trail names it

    @property
    def spaces(self) -> frozenset[str] | None:
        """The spaces any role reaches; None: every space."""
        return self.rights.reach

    @property
    def operator(self) -> bool:
        """Administers every space (a key for every space, no keys configured, or a person whose
        groups make them admin of `*`): may see how the service is wired — internal addresses of
        LLM servers and stores — and read /metrics."""
        return self.rights.every == "admin"

    @property
    def reads_metrics(self) -> bool:
        return self.operator or self.scraper

    @property
    def owner(self) -> str | None:
        """Whose conversations this caller sees: a person's own; None (a key's, or an open
        service's) sees those made without a person."""
        return self.person.person_id if self.person is not None else None

    def role_in(self, space_id: str) -> Role | None:
        return self.rights.role_in(space_id)

    def check_space(self, space_id: str, need: Role = "reader") -> str:
        """`space_id` when this caller holds `need` (or more) there; `Forbidden` otherwise."""
        role = self.rights.role_in(space_id)
        if role is None:
            who = "this API key has" if self.via == "key" else "you have"
            raise Forbidden(f"{who} no access to space {space_id!r}", space_id=space_id)
        if rank(role) < rank(need):
            raise Forbidden(
                f"your role in space {space_id!r} is {role}; to {WHAT[need]} you need {need}",
                space_id=space_id,
                role=role,
                needed=need,
            )
        return space_id

    def check_admin(self, space_id: str | None) -> None:
        """The audit trail: a space's admins read its entries; only admins of every space read
        them all (space_id None)."""
        if space_id is None:
            if self.rights.every != "admin":
                raise Forbidden("reading the whole audit trail needs the admin role in every space; name a space_id")
            return
        self.check_space(space_id, "admin")


OPEN = Access(EVERYTHING)
NOBODY = Access(NOTHING, via="none")
SCRAPER = Access(NOTHING, scraper=True, via="key")


def of_caller(caller: Caller) -> Access:
    return Access(caller.rights, "person:" + caller.person.person_id, via=caller.via, person=caller.person)


def offered_key(headers: dict[bytes, bytes]) -> bytes:
    header = headers.get(b"authorization", b"")
    return header[7:].strip() if header[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"").strip()


def is_metrics_key(headers: dict[bytes, bytes], metrics_digest: bytes | None) -> bool:
    """The request carries METRICS_KEY (compared digest to digest, in constant time)."""
    given = offered_key(headers)
    return metrics_digest is not None and bool(given) and hmac.compare_digest(digest_of(given), metrics_digest)


def access_for(given: bytes, keys: tuple[ApiKey, ...]) -> Access | None:
    """The access an API key grants, or None when it is not one. The key is compared as the
    bytes sent, so a key is only ever the printable ASCII it was configured as."""
    key = find_key(given, keys)
    if key is None:
        return None
    key_id = key.digest.hex()[:16]
    rights = everywhere("admin") if key.spaces is None else in_spaces(key.spaces, "admin")
    return Access(rights, holder="key:" + key_id, via="key", key_id=key_id)


async def require_key(request: Request) -> Access:
    """The caller's access, as `RequestGuard` resolved it from the headers. Dependencies are
    coroutines: FastAPI runs a plain function in its thread pool, a thread hop per request."""
    access = request.scope.get("state", {}).get("access")
    if access is None or access.via == "none":  # reached without a credential (an open route's NOBODY)
        raise Unauthorized("sign in, or send a valid API key or token (Authorization: Bearer …)")
    return access


async def caller_access(request: Request) -> Access:
    """On an open route: what the caller reaches, if anything; `NOBODY` without a credential."""
    return request.scope.get("state", {}).get("access") or NOBODY
