"""Sign-in through an OpenID Connect provider (Keycloak, Entra ID, Okta, Authentik, Google, …): the
authorization code flow with PKCE (S256), `state` and `nonce`.

`begin` gives the address to send the browser to, and the `PendingLogin` the caller keeps until the
callback; `complete` exchanges the callback's code; `refresh` asks the provider again later, with
the refresh token (without one: userinfo, with the access token). Discovery and JWKS are read when
first needed and kept; the JWKS again once when a token names a key it lacks (keys rotated).

The ID token is checked by joserfc and Authlib (`id_token.py`), with the algorithms the provider
advertises. A provider that does not answer, or answers with a server error, is
`IdentityProviderUnavailable`; a sign-in it refuses, or whose token does not hold, `SignInFailed`
saying which check failed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import errors as jose
from joserfc import jwk
from pydantic import Field, model_validator

from docassist.pipelines.environment import ConfigError, FromEnvironment
from docassist.pipelines.errors import IdentityProviderUnavailable, SignInFailed
from docassist.pipelines.identity import id_token
from docassist.pipelines.identity.id_token import ASYMMETRIC_ALGS, verify_id_token
from docassist.pipelines.identity.oidc_wire import Provider, Refusal, Tokens
from docassist.pipelines.identity.people import Person
from docassist.pipelines.logs import event

CALLBACK_PATH = "/auth/oidc/callback"
__all__ = ["ASYMMETRIC_ALGS", "Grant", "OidcClient", "OidcSettings", "PendingLogin", "verify_id_token"]
# token endpoint errors about docassist's client, not about the person or the code (RFC 6749 §5.2)
_CLIENT_REFUSED = ("invalid_client", "unauthorized_client")


class OidcSettings(FromEnvironment):
    """Which provider and which client at it; sign-in through OpenID Connect is off without OIDC_ISSUER."""

    issuer: str | None = Field(None, validation_alias="OIDC_ISSUER")  # e.g. https://sso.example.com/realms/staff
    client_id: str | None = Field(None, validation_alias="OIDC_CLIENT_ID")
    # client_secret_basic (client_secret_post where the provider offers only that); None: a public client
    client_secret: str | None = Field(None, validation_alias="OIDC_CLIENT_SECRET")
    # the claim with the person's groups, read from the ID token, else from userinfo
    groups_claim: str = Field("groups", min_length=1, validation_alias="OIDC_GROUPS_CLAIM")
    # docassist as browsers reach it; the redirect URI to register is {PUBLIC_URL}/auth/oidc/callback
    public_url: str | None = Field(None, validation_alias="PUBLIC_URL")
    # unset: openid profile email, and the groups claim's name where the provider offers it as a
    # scope (oidc-provider, Okta, Authentik); add `offline_access` for refresh tokens where needed
    scopes: str | None = Field(None, validation_alias="OIDC_SCOPES")
    provider_name: str | None = Field(None, validation_alias="OIDC_PROVIDER_NAME")  # "Sign in with …"
    timeout_s: float = Field(10, gt=0, le=120, validation_alias="OIDC_TIMEOUT_S")  # each request to the provider

    @property
    def configured(self) -> bool:
        return self.issuer is not None

    @property
    def redirect_uri(self) -> str:
        if self.public_url is None:
            raise ConfigError("environment", "PUBLIC_URL", "sign-in through an OpenID provider needs PUBLIC_URL")
        return self.public_url.rstrip("/") + CALLBACK_PATH

    @property
    def display_name(self) -> str:
        return self.provider_name or urlsplit(self.issuer or "").hostname or (self.issuer or "")

    @model_validator(mode="after")
    def _usable(self) -> Self:
        """Refuse a start with settings that cannot work, saying what to write instead."""
        if self.issuer is None:
            return self
        if not _is_url(self.issuer):
            raise ValueError("OIDC_ISSUER must be the provider's issuer URL, e.g. https://sso.example.com/realms/staff")
        if not self.client_id or not self.public_url:
            raise ValueError(
                "OIDC_ISSUER is set, so OIDC_CLIENT_ID (docassist's client id at the provider) and PUBLIC_URL "
                "(docassist's address as browsers reach it, e.g. https://docs.example.com) must be set too; "
                f"register {{PUBLIC_URL}}{CALLBACK_PATH} as the client's redirect URI"
            )
        if not _is_url(self.public_url):
            raise ValueError(
                "PUBLIC_URL must be docassist's address as browsers reach it, e.g. https://docs.example.com"
            )
        if self.scopes is not None and "openid" not in self.scopes.split():
            raise ValueError("OIDC_SCOPES must include openid, e.g. OIDC_SCOPES='openid profile email'")
        return self


def _is_url(value: str) -> bool:
    return value.lower().startswith(("https://", "http://")) and bool(urlsplit(value).hostname)


@dataclass(frozen=True)
class PendingLogin:
    """A sign-in between `begin` and its callback, kept by the caller (found again by `state`)."""

    state: str
    nonce: str
    code_verifier: str
    created_at: float


@dataclass(frozen=True)
class Grant:
    """What lets a refresh ask the provider again, kept with the person."""

    refresh_token: str | None
    access_token: str | None
    expires_at: float | None  # of the access token


class OidcClient:
    """One provider, one client at it: sign-ins and refreshes over one HTTP connection pool."""

    def __init__(self, settings: OidcSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if settings.issuer is None or settings.client_id is None:
            raise ConfigError("environment", "OIDC_ISSUER", "sign-in through an OpenID provider is not configured")
        self.settings = settings
        self._issuer, self._client_id = settings.issuer, settings.client_id
        headers = {"Accept": "application/json"}
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout_s, headers=headers)
        self._provider: Provider | None = None
        self._keys: jwk.KeySet | None = None
        self._discovering = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    async def begin(self) -> tuple[str, PendingLogin]:
        """The provider's authorization URL for a new sign-in, and what its callback will need."""
        provider = await self._discovered()
        scopes = self._scopes(provider)
        token = secrets.token_urlsafe  # the verifier of 86 characters: within RFC 7636's 43 to 128
        pending = PendingLogin(state=token(32), nonce=token(32), code_verifier=token(64), created_at=time.time())
        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self.settings.redirect_uri,
            "scope": " ".join(scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        if "offline_access" in scopes:
            params["prompt"] = "consent"  # OpenID Connect Core §11: without it offline_access is ignored
        endpoint = provider.authorization_endpoint
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params), pending

    def _scopes(self, provider: Provider) -> list[str]:
        """OIDC_SCOPES as given; unset, `openid profile email` and the groups claim's own scope
        where the provider offers one by that name (it then releases the claim only when asked)."""
        if self.settings.scopes is not None:
            return self.settings.scopes.split()
        extra = [self.settings.groups_claim] if self.settings.groups_claim in provider.scopes else []
        return ["openid", "profile", "email", *extra]

    async def complete(self, code: str, pending: PendingLogin) -> tuple[Person, Grant]:
        """The person the callback's `code` signs in, for the sign-in `pending` describes."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.redirect_uri}
        answer = await self._token(form | {"code_verifier": pending.code_verifier}, "code exchange")
        if isinstance(answer, Refusal) and answer.error in _CLIENT_REFUSED:
            raise self._down(f"does not accept docassist as its client ({answer.error}): {_CHECK_CLIENT}")
        if isinstance(answer, Refusal):
            detail = f" ({answer.description[:200]})" if answer.description else ""
            raise SignInFailed(
                f"the provider refused the sign-in's code: {answer.error}{detail}; a code is good once, for the "
                "sign-in that asked for it: start again"
            )
        if answer.id_token is None:
            raise SignInFailed("the provider sent no ID token with the sign-in (OIDC_SCOPES must include openid)")
        claims = await self._verified(answer.id_token, pending.nonce, answer.access_token)
        claims = await self._with_groups(claims, answer.access_token)
        if claims is None:
            raise SignInFailed("the provider refused its own access token at userinfo: start again")
        return _person(claims, self.settings.groups_claim, None), _grant(answer, None)

    async def refresh(self, person: Person, grant: Grant) -> tuple[Person, Grant] | None:
        """`person` as the provider has them now; None once it no longer vouches for them (the
        account disabled or deleted, the grant revoked or expired). IdentityProviderUnavailable
        when it cannot be asked: the caller keeps the last rights meanwhile."""
        if grant.refresh_token is not None:
            answer = await self._token({"grant_type": "refresh_token", "refresh_token": grant.refresh_token}, "refresh")
            if isinstance(answer, Refusal):
                if answer.error == "invalid_grant":
                    return None
                # not about the person: docassist's own client refused (a changed secret); the last
                # rights hold as while the provider is away, and the log says why
                raise self._down(f"refused docassist's refresh ({answer.error}): {_CHECK_CLIENT}")
            fresh = _grant(answer, grant)
            if answer.id_token is None:  # some providers send none on a refresh: userinfo says who it is
                claims = await self._userinfo(fresh.access_token)
            else:
                try:
                    claims = await self._verified(answer.id_token, None, answer.access_token)
                except SignInFailed as exc:
                    return self._refused(person, exc.message)
                claims = await self._with_groups(claims, fresh.access_token)
        elif grant.access_token is not None:  # no refresh token: ask with the access token while it lasts
            fresh, claims = grant, await self._userinfo(grant.access_token)
        else:
            return None
        if claims is None:  # the access token refused at userinfo
            return None
        if claims.get("sub") != person.login:  # Core §12.2: the same person, or no answer about them
            return self._refused(person, f"the provider answered for sub {claims.get('sub')!r}")
        return _person(claims, self.settings.groups_claim, person), fresh

    @staticmethod
    def _refused(person: Person, why: str) -> None:
        event("[AUTH] OIDC refresh refused", f"{person.person_id}: {why}", level=logging.WARNING)

    async def _verified(self, token: str, nonce: str | None, access_token: str | None) -> dict[str, Any]:
        algorithms = (await self._discovered()).algorithms
        try:
            try:
                decoded = id_token.decode(token, await self._signing_keys(), algorithms)
            except jose.InvalidKeyIdError:  # a key the provider rotated in since its JWKS was read
                decoded = id_token.decode(token, await self._signing_keys(fresh=True), algorithms)
        except (jose.JoseError, ValueError) as exc:
            raise id_token.refused_signature(exc, algorithms) from exc
        return id_token.check_claims(decoded, self._issuer, self._client_id, nonce, None, access_token)

    async def _with_groups(self, claims: dict[str, Any], access_token: str | None) -> dict[str, Any] | None:
        """`claims`, with userinfo's added when the groups claim is not among them; None when
        userinfo refuses the access token."""
        if claims.get(self.settings.groups_claim) is not None or access_token is None:
            return claims
        info = await self._userinfo(access_token)
        if info is None:
            return None
        return {**info, **claims} if info.get("sub") == claims.get("sub") else claims  # Core §5.3.4

    async def _userinfo(self, access_token: str | None) -> dict[str, Any] | None:
        """The userinfo claims; None when the provider refuses the access token; {} without an
        endpoint, or for a signed answer (which docassist does not read)."""
        endpoint = (await self._discovered()).userinfo_endpoint
        if access_token is None or endpoint is None:
            return None if access_token is None else {}
        response = await self._send("GET", endpoint, "userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code in (401, 403):
            return None
        if response.headers.get("content-type", "").startswith("application/jwt"):
            return {}
        return self._json(response, "userinfo")

    async def _token(self, form: dict[str, str], what: str) -> Tokens | Refusal:
        """The token endpoint's answer to `form`, the client authenticated as the provider offers."""
        provider = await self._discovered()
        auth, secret = None, self.settings.client_secret
        if secret is None or provider.post_secret:
            form = form | {"client_id": self._client_id} | ({"client_secret": secret} if secret else {})
        else:  # client_secret_basic, both parts form-encoded first (RFC 6749 §2.3.1)
            auth = httpx.BasicAuth(quote_plus(self._client_id), quote_plus(secret))
        response = await self._send("POST", provider.token_endpoint, what, data=form, auth=auth)
        if response.status_code in (400, 401):
            try:
                body = response.json()
            except ValueError:
                body = None
            body = body if isinstance(body, dict) else {}
            return Refusal(str(body.get("error") or "invalid_request"), str(body.get("error_description") or ""))
        body = self._json(response, what)
        expires_in = body.get("expires_in")
        return Tokens(
            access_token=_text(body.get("access_token")),
            id_token=_text(body.get("id_token")),
            refresh_token=_text(body.get("refresh_token")),
            expires_in=float(expires_in) if type(expires_in) in (int, float) else None,
        )

    async def _discovered(self) -> Provider:
        """The provider's discovery document, read once (again after a failed read)."""
        async with self._discovering:
            if self._provider is None:
                self._provider = await self._discover()
        return self._provider

    async def _discover(self) -> Provider:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._json(await self._send("GET", url, "discovery"), f"discovery at {url}: check OIDC_ISSUER")
        if doc.get("issuer") != self._issuer:
            raise self._down(f"names its issuer {doc.get('issuer')!r} at {url}: set OIDC_ISSUER to its issuer exactly")
        endpoints = {name: _text(doc.get(name)) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")}
        missing = [name for name, value in endpoints.items() if value is None]
        if missing:
            raise self._down(f"has a discovery document without {', '.join(missing)} ({url})")
        advertised = doc.get("id_token_signing_alg_values_supported") or ["RS256"]  # RS256: Discovery §3
        algorithms = tuple(alg for alg in advertised if alg in ASYMMETRIC_ALGS)
        if not algorithms:
            raise self._down(f"signs ID tokens only with {advertised}: docassist needs a public-key one such as RS256")
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return Provider(
            authorization_endpoint=endpoints["authorization_endpoint"] or "",
            token_endpoint=endpoints["token_endpoint"] or "",
            jwks_uri=endpoints["jwks_uri"] or "",
            userinfo_endpoint=_text(doc.get("userinfo_endpoint")),
            algorithms=algorithms,
            post_secret="client_secret_basic" not in methods and "client_secret_post" in methods,
            scopes=frozenset(s for s in doc.get("scopes_supported") or () if isinstance(s, str)),
        )

    async def _signing_keys(self, fresh: bool = False) -> jwk.KeySet:
        """The provider's signing keys, read once; `fresh`: read again."""
        if self._keys is None or fresh:
            jwks_uri = (await self._discovered()).jwks_uri
            self._keys = id_token.key_set(self._json(await self._send("GET", jwks_uri, "JWKS"), f"JWKS at {jwks_uri}"))
        return self._keys

    async def _send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request to the provider; not answering, or a server error: IdentityProviderUnavailable."""
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise self._down(f"did not answer within {self.settings.timeout_s:g} s ({what})") from exc
        except httpx.TransportError as exc:
            raise self._down(f"cannot be reached ({what}): {exc or type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise self._down(f"answered HTTP {response.status_code} ({what})")
        return response

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The JSON object of a 200 answer; anything else: IdentityProviderUnavailable."""
        try:
            body = response.json() if response.status_code == 200 else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._down(f"answered HTTP {response.status_code} without a JSON object ({what})")
        return body

    def _down(self, why: str) -> IdentityProviderUnavailable:
        return IdentityProviderUnavailable(f"the OpenID provider {self._issuer} {why}")


_CHECK_CLIENT = "check OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _grant(answer: Tokens, previous: Grant | None) -> Grant:
    """What the token endpoint answered; a refresh token it did not rotate is kept."""
    refresh_token = answer.refresh_token or (previous.refresh_token if previous else None)
    expires_at = time.time() + answer.expires_in if answer.expires_in is not None else None
    return Grant(refresh_token=refresh_token, access_token=answer.access_token, expires_at=expires_at)


def _person(claims: Mapping[str, Any], groups_claim: str, previous: Person | None) -> Person:
    """The person verified `claims` describe; a name the claims lack is kept from `previous`."""
    sub = str(claims["sub"])
    named = next((claims[k] for k in ("name", "preferred_username", "email") if _text(claims.get(k))), None)
    name = named or (previous.name if previous is not None else sub)
    groups = _groups(claims.get(groups_claim))
    return Person(person_id=f"oidc:{sub}", login=sub, name=name, groups=groups, source="oidc")


def _groups(value: object) -> tuple[str, ...]:
    """The groups claim as sorted unique strings: one string is one group; no claim, none."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(sorted({group for group in value if isinstance(group, str) and group}))
