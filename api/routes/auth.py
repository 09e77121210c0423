"""Signing in and out, who the caller is, and personal tokens."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from docassist.api.audit_trail import client_of, entry, record
from docassist.api.auth import SESSION_COOKIE, Access, of_caller
from docassist.api.auth_schemas import (
    AuthConfig,
    LoginRequest,
    Me,
    NewToken,
    SpaceRole,
    TokenList,
    TokenOut,
    TokenRequest,
    UserOut,
)
from docassist.api.callers import session_cookie
from docassist.api.deps import AccessDep, AssistantDep, CallerDep
from docassist.api.schemas import error_responses
from docassist.pipelines.errors import DocassistError, Forbidden, InvalidCredentials
from docassist.pipelines.identity.people import Person
from docassist.pipelines.identity.service import SignedIn
from docassist.pipelines.identity.sessions import ATTEMPT_TTL_S

router = APIRouter(prefix="/auth", tags=["sign-in"])
STATE_COOKIE = "docassist_oidc_state"  # the OpenID sign-in this browser started
CALLBACK_DIR = "/auth/oidc/"
TokenId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def me_of(access: Access, expires_at: float | None = None) -> Me:
    person = access.person
    user = UserOut(id=person.person_id, name=person.name, groups=list(person.groups)) if person else None
    spaces = [SpaceRole(space_id=s, role=r) for s, r in access.rights.listed()]
    via = access.via if access.via in ("session", "token", "key") else "open"
    return Me(
        user=user,
        via=via,  # type: ignore[arg-type]
        spaces=spaces,
        every_space_role=access.rights.every,
        no_groups=person is not None and not person.groups,
        expires_at=expires_at,
    )


def _set_cookie(request: Request, response: Response, signed: SignedIn) -> None:
    secure = request.app.state.assistant.identity.config.secure_cookie
    max_age = max(1, int(signed.expires_at - time.time()))  # the browser forgets it when the server does
    response.set_cookie(
        SESSION_COOKIE, signed.secret, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure
    )


@router.get("/config", response_model=AuthConfig)
async def auth_config(assistant: AssistantDep) -> AuthConfig:
    """How people sign in here: with a username and password (LDAP), through an OpenID provider,
    with API keys only, or not at all (an open service)."""
    identity = assistant.identity
    oidc = identity.config.oidc
    return AuthConfig(
        ldap=identity.ldap is not None,
        oidc=identity.oidc is not None,
        oidc_name=oidc.display_name if identity.oidc is not None else None,
        keys=bool(assistant.settings.api_keys),
    )


@router.post("/login", response_model=Me, responses=error_responses(401, 403, 404, 422, 429, 503))
async def login(body: LoginRequest, request: Request, response: Response, assistant: AssistantDep) -> Me:
    """Sign in with the directory's username and password: a session cookie and who you are. A
    wrong password and an unknown username get the same answer."""
    client, done = client_of(request.scope), entry(request.scope, None, "sign_in", detail="ldap")
    try:
        signed = await assistant.identity.sign_in_ldap(body.username, body.password, client, done)
    except InvalidCredentials:
        await record(request, None, "sign_in_failed", detail="username " + body.username[:100])
        raise
    _set_cookie(request, response, signed)
    return me_of(of_caller(signed.caller), signed.expires_at)


@router.get("/oidc/login", status_code=302, responses=error_responses(404, 503))
async def oidc_login(
    assistant: AssistantDep, return_to: Annotated[str, Query(max_length=2000)] = "/"
) -> RedirectResponse:
    """Off to the OpenID provider; it sends the browser back to `/auth/oidc/callback`. The browser
    keeps the sign-in's state in a cookie of its own: the callback is taken only with it."""
    url, state = await assistant.identity.oidc_begin(_local(return_to))
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    secure = assistant.identity.config.secure_cookie
    # Lax: sent on the provider's redirect back (a top-level navigation), never on a cross-site subrequest
    response.set_cookie(
        STATE_COOKIE, state, max_age=ATTEMPT_TTL_S, path=CALLBACK_DIR, httponly=True, samesite="lax", secure=secure
    )
    return response


@router.get("/oidc/callback", status_code=302, responses=error_responses(401, 404, 422, 503))
async def oidc_callback(
    request: Request,
    assistant: AssistantDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """The provider's answer: a session, then the page (or where the sign-in started). A forged,
    replayed or failed callback starts no session: a browser is sent back to the page with
    `sign_in_error`, any other client gets the error."""
    try:
        done = entry(request.scope, None, "sign_in", detail="oidc")
        kept = request.cookies.get(STATE_COOKIE)
        signed = await assistant.identity.oidc_complete(code, state, error, kept, client_of(request.scope), done)
    except DocassistError as exc:
        await record(request, None, "sign_in_failed", detail=f"oidc: {exc.code}")
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/?" + urlencode({"sign_in_error": exc.code}), status_code=302)
        raise
    to = signed.return_to
    if not signed.caller.person.groups:
        to = "/?" + urlencode({"sign_in_error": "no_groups"})
    response = RedirectResponse(to, status_code=302, headers={"Cache-Control": "no-store"})
    _set_cookie(request, response, signed)
    response.delete_cookie(STATE_COOKIE, path=CALLBACK_DIR)
    return response


@router.get("/me", response_model=Me, responses=error_responses(401, 503))
async def me(access: AccessDep) -> Me:
    """Who you are — a person (by session or token), an API key, or nobody on an open service —
    and the spaces you reach, with your role in each."""
    return me_of(access)


@router.post("/logout", status_code=204, response_class=Response, responses=error_responses(503))
async def logout(request: Request, assistant: AssistantDep, caller: CallerDep) -> Response:
    """End this browser's session on the server: its cookie works nowhere any more."""
    response = Response(status_code=204)
    cookie = session_cookie(dict(request.scope["headers"]))
    if cookie is not None:
        person = await assistant.identity.sign_out(cookie)
        if person is not None:
            await record(request, caller, "sign_out", person=person)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _person_of(access: Access) -> Person:
    if access.person is None:
        raise Forbidden("personal tokens belong to people: sign in first (an API key has none)")
    return access.person


@router.post("/tokens", status_code=201, response_model=NewToken, responses=error_responses(401, 403, 422, 503))
async def create_token(body: TokenRequest, request: Request, assistant: AssistantDep, access: AccessDep) -> NewToken:
    """A personal token that acts as you, with your rights as they are at each use, until it
    expires or you revoke it. The token is in this answer only."""
    person = _person_of(access)
    token, info = await assistant.identity.create_token(person, body.name, body.expires_in_days)
    await record(request, access, "token_created", detail=f"{info.token_id} {body.name[:100]}")
    return NewToken(token=token, **TokenOut.model_validate(info).model_dump())


@router.get("/tokens", response_model=TokenList, responses=error_responses(401, 403, 503))
async def list_tokens(assistant: AssistantDep, access: AccessDep) -> TokenList:
    """Your tokens (never their values)."""
    infos = await assistant.identity.tokens_of(_person_of(access))
    return TokenList(tokens=[TokenOut.model_validate(i) for i in infos])


@router.delete(
    "/tokens/{token_id}", status_code=204, response_class=Response, responses=error_responses(401, 403, 404, 503)
)
async def revoke_token(token_id: TokenId, request: Request, assistant: AssistantDep, access: AccessDep) -> Response:
    """Revoke one of your tokens: it stops working at once, on every backend."""
    info = await assistant.identity.revoke_token(_person_of(access), token_id)
    await record(request, access, "token_revoked", detail=f"{info.token_id} {info.name[:100]}")
    return Response(status_code=204)


def _local(return_to: str) -> str:
    """Only a path of this service: a sign-in never sends the browser to another site."""
    if not return_to.startswith("/") or return_to.startswith("//") or "\\" in return_to:
        return "/"
    return return_to
