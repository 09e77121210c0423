"""Sign-in through OpenID Connect against a real provider (`oidc-provider` on Node, tests/oidc/):
the code flow with PKCE, state and nonce as `OidcClient` drives it, the provider's own login and
consent forms filled in as a browser would, refreshes after the provider changed the person, and
the ID token checks one by one on tokens crafted with joserfc."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwk, jwt
from joserfc.jws import JWSRegistry

from docassist.pipelines.environment import ConfigError
from docassist.pipelines.errors import IdentityProviderUnavailable, SignInFailed
from docassist.pipelines.identity.oidc import Grant, OidcClient, OidcSettings, PendingLogin, verify_id_token
from docassist.pipelines.identity.people import Person
from docassist.pipelines.llm.llama_server import free_port
from tests.identity_provider import OidcProvider

PUBLIC_URL = f"http://127.0.0.1:{free_port()}"  # docassist's address: nothing serves it, the tests read the redirect
CALLBACK = f"{PUBLIC_URL}/auth/oidc/callback"


@pytest.fixture(scope="module")
def provider(oidc_provider: OidcProvider) -> OidcProvider:
    oidc_provider.start([CALLBACK])
    return oidc_provider


@asynccontextmanager
async def oidc(provider: OidcProvider, **env: str) -> AsyncIterator[OidcClient]:
    client = OidcClient(OidcSettings.from_env({**provider.env(PUBLIC_URL), **env}))
    try:
        yield client
    finally:
        await client.close()


async def callback(client: OidcClient, provider: OidcProvider, sub: str) -> tuple[str, PendingLogin]:
    """A new sign-in as `sub` up to the browser's return: the callback's code, and the pending sign-in."""
    url, pending = await client.begin()
    with httpx.Client() as browser:
        back = provider.login(browser, url, sub)
    assert back.startswith(CALLBACK + "?"), back
    query = parse_qs(urlsplit(back).query)
    assert query["state"] == [pending.state], "the provider hands the state back for the caller to find the sign-in"
    return query["code"][0], pending


async def sign_in(client: OidcClient, provider: OidcProvider, sub: str) -> tuple[Person, Grant]:
    return await client.complete(*await callback(client, provider, sub))


# ---------------------------------------------------------------------- sign-in
def test_sign_in_gives_the_person_and_their_groups(provider: OidcProvider) -> None:
    provider.set_account("alice", "Alice Liddell", ["staff", "engineering", "staff"])

    async def scenario() -> tuple[str, PendingLogin, Person, Grant]:
        async with oidc(provider) as client:
            url, pending = await client.begin()
            person, grant = await sign_in(client, provider, "alice")
            return url, pending, person, grant

    url, pending, person, grant = asyncio.run(scenario())
    assert person == Person("oidc:alice", "alice", "Alice Liddell", ("engineering", "staff"), "oidc")
    assert grant.refresh_token and grant.access_token
    assert grant.expires_at is not None and grant.expires_at > time.time() + 60
    # what the browser is sent with: PKCE S256 (the verifier never leaves the server), state, nonce
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(provider.issuer + "/")
    assert query["redirect_uri"] == CALLBACK and query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.code_verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == challenge.decode()
    assert pending.code_verifier not in url
    assert query["state"] == pending.state and query["nonce"] == pending.nonce
    assert len({pending.state, pending.nonce, pending.code_verifier}) == 3


def test_groups_only_at_userinfo_are_read_from_there(provider: OidcProvider) -> None:
    provider.set_account("bob", "Bob Builder", ["readers"], groups_in_id_token=False)

    async def scenario() -> Person:
        async with oidc(provider) as client:
            return (await sign_in(client, provider, "bob"))[0]

    assert asyncio.run(scenario()).groups == ("readers",)


def test_no_groups_claim_gives_no_groups(provider: OidcProvider) -> None:
    provider.set_account("carol", None, None, email="carol@example.org")

    async def scenario() -> Person:
        async with oidc(provider) as client:
            return (await sign_in(client, provider, "carol"))[0]

    person = asyncio.run(scenario())
    assert person.groups == ()
    assert person.name == "carol", "no name claim: preferred_username"


def test_a_reused_code_is_refused(provider: OidcProvider) -> None:
    provider.set_account("dave", "Dave", ["staff"])

    async def scenario() -> None:
        async with oidc(provider) as client:
            code, pending = await callback(client, provider, "dave")
            await client.complete(code, pending)
            with pytest.raises(SignInFailed, match="invalid_grant"):
                await client.complete(code, pending)

    asyncio.run(scenario())


def test_a_code_completed_with_another_sign_ins_pending_is_refused(provider: OidcProvider) -> None:
    provider.set_account("erin", "Erin", ["staff"])

    async def scenario() -> None:
        async with oidc(provider) as client:
            # another sign-in's verifier: the provider's PKCE check refuses the code
            code, pending = await callback(client, provider, "erin")
            _, other = await client.begin()
            with pytest.raises(SignInFailed, match="invalid_grant"):
                await client.complete(code, other)
            # the right verifier with another sign-in's nonce: the ID token's nonce check refuses it
            code, pending = await callback(client, provider, "erin")
            with pytest.raises(SignInFailed, match="nonce"):
                await client.complete(code, dataclasses.replace(pending, nonce=other.nonce))

    asyncio.run(scenario())


def test_offline_access_asks_for_consent_and_signs_in(provider: OidcProvider) -> None:
    provider.set_account("ivy", "Ivy", ["staff"])

    async def scenario() -> tuple[str, Person, Grant]:
        async with oidc(provider, OIDC_SCOPES="openid profile email groups offline_access") as client:
            url, _ = await client.begin()
            return url, *await sign_in(client, provider, "ivy")

    url, person, grant = asyncio.run(scenario())
    assert parse_qs(urlsplit(url).query)["prompt"] == ["consent"], "without it the provider drops offline_access"
    assert person.groups == ("staff",) and grant.refresh_token


def test_a_wrong_client_secret_is_named(provider: OidcProvider) -> None:
    provider.set_account("jack", "Jack", ["staff"])

    async def scenario() -> None:
        async with oidc(provider, OIDC_CLIENT_SECRET="not-the-secret") as client:
            code, pending = await callback(client, provider, "jack")
            with pytest.raises(IdentityProviderUnavailable, match=r"invalid_client.*OIDC_CLIENT_SECRET"):
                await client.complete(code, pending)

    asyncio.run(scenario())


# ---------------------------------------------------------------------- refresh
@pytest.mark.parametrize("groups_in_id_token", [True, False], ids=["groups-in-id-token", "groups-at-userinfo"])
def test_a_refresh_reads_the_groups_the_provider_has_now(provider: OidcProvider, groups_in_id_token: bool) -> None:
    sub = f"frank-{groups_in_id_token}"
    provider.set_account(sub, "Frank", ["readers"], groups_in_id_token=groups_in_id_token)

    async def scenario() -> None:
        async with oidc(provider) as client:
            person, grant = await sign_in(client, provider, sub)
            assert person.groups == ("readers",)
            provider.set_account(sub, "Frank Castle", ["editors", "readers"], groups_in_id_token=groups_in_id_token)
            refreshed = await client.refresh(person, grant)
            assert refreshed is not None
            fresh, fresh_grant = refreshed
            assert fresh == Person(f"oidc:{sub}", sub, "Frank Castle", ("editors", "readers"), "oidc")
            assert fresh_grant.access_token != grant.access_token and fresh_grant.refresh_token
            # without a refresh token the access token asks userinfo
            provider.set_account(sub, "Frank Castle", ["readers"], groups_in_id_token=groups_in_id_token)
            refreshed = await client.refresh(fresh, dataclasses.replace(fresh_grant, refresh_token=None))
            assert refreshed is not None and refreshed[0].groups == ("readers",)

    asyncio.run(scenario())


@pytest.mark.parametrize("change", ["deleted", "disabled"])
def test_a_refresh_after_the_account_went_away_gives_none(provider: OidcProvider, change: str) -> None:
    sub = f"gina-{change}"
    provider.set_account(sub, "Gina", ["staff"])

    async def scenario() -> tuple[object, object]:
        async with oidc(provider) as client:
            person, grant = await sign_in(client, provider, sub)
            if change == "deleted":
                provider.delete_account(sub)
            else:
                provider.set_account(sub, "Gina", ["staff"], disabled=True)
            with_refresh_token = await client.refresh(person, grant)
            with_access_token = await client.refresh(person, dataclasses.replace(grant, refresh_token=None))
            return with_refresh_token, with_access_token

    assert asyncio.run(scenario()) == (None, None)


# ---------------------------------------------------------------------- the provider away
def test_a_stopped_provider_is_unavailable_at_once_and_a_new_key_is_read_after_its_restart(tmp_path: Path) -> None:
    own = OidcProvider(tmp_path)  # a provider of this test's own: stopping it disturbs no other test
    try:
        own.start([CALLBACK])
        own.set_account("hana", "Hana", ["staff"])
        jwks_uri = f"{own.issuer}/jwks"
        kid_before = httpx.get(jwks_uri).json()["keys"][0]["kid"]

        async def scenario() -> None:
            async with oidc(own) as client:
                person, grant = await sign_in(client, own, "hana")
                code, pending = await callback(client, own, "hana")
                own.stop()
                for attempt in (lambda: client.refresh(person, grant), lambda: client.complete(code, pending)):
                    started = time.monotonic()
                    with pytest.raises(IdentityProviderUnavailable, match="cannot be reached"):
                        await attempt()
                    assert time.monotonic() - started < 2
                async with oidc(own) as fresh_client:
                    with pytest.raises(IdentityProviderUnavailable):
                        await fresh_client.begin()
                # back, signing with a new key: the client that kept the old JWKS reads it again
                own.start([CALLBACK])
                assert httpx.get(jwks_uri).json()["keys"][0]["kid"] != kid_before
                person, _ = await sign_in(client, own, "hana")
                assert person.groups == ("staff",)

        asyncio.run(scenario())
    finally:
        own.stop()


def test_an_issuer_other_than_the_providers_own_is_refused(provider: OidcProvider) -> None:
    async def scenario() -> None:
        # the same discovery document, but OIDC_ISSUER with a trailing slash the provider's lacks
        async with oidc(provider, OIDC_ISSUER=provider.issuer + "/") as client:
            with pytest.raises(IdentityProviderUnavailable, match="set OIDC_ISSUER to its issuer exactly"):
                await client.begin()

    asyncio.run(scenario())


class _Unavailable(BaseHTTPRequestHandler):
    """A gateway in front of a provider that is down: 503 to everything."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def broken_provider(kind: str) -> Iterator[str]:
    """The issuer URL of a provider that never answers, or answers 503."""
    if kind == "silent":
        with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            yield f"http://127.0.0.1:{silent.getsockname()[1]}"
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("kind", "reason"), [("silent", "did not answer within 0.5 s"), ("503", "answered HTTP 503")], ids=["silent", "503"]
)
def test_a_provider_that_does_not_answer_is_unavailable(provider: OidcProvider, kind: str, reason: str) -> None:
    with broken_provider(kind) as issuer:

        async def scenario() -> None:
            async with oidc(provider, OIDC_ISSUER=issuer, OIDC_TIMEOUT_S="0.5") as client:
                with pytest.raises(IdentityProviderUnavailable, match=reason):
                    await client.begin()

        started = time.monotonic()
        asyncio.run(scenario())
        assert time.monotonic() - started < 3


# ---------------------------------------------------------------------- the ID token's checks
ISSUER, CLIENT, NONCE = "https://sso.example.com", "docassist", "the-nonce"


@pytest.fixture(scope="module")
def key() -> jwk.RSAKey:
    return jwk.RSAKey.generate_key(2048, parameters={"kid": "provider-key", "use": "sig"}, private=True)


@pytest.fixture(scope="module")
def jwks(key: jwk.RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def id_token(key: jwk.Key, header: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": now + 300, "iat": now, "nonce": NONCE, **claims}
    header = {"alg": "RS256", "kid": key.kid, **(header or {})}
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key, algorithms=[header["alg"]])


def test_a_sound_id_token_passes(key: jwk.RSAKey, jwks: dict[str, Any]) -> None:
    claims = verify_id_token(id_token(key), jwks, ISSUER, CLIENT, NONCE)
    assert claims["sub"] == "alice"
    # several audiences: fine when it names this client as the authorized party
    assert verify_id_token(id_token(key, aud=[CLIENT, "api"], azp=CLIENT), jwks, ISSUER, CLIENT, NONCE)
    # a little clock skew is fine; no nonce asked (a refresh): none checked
    assert verify_id_token(id_token(key, exp=int(time.time()) - 30), jwks, ISSUER, CLIENT, None)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nonce": "another-sign-in"}, "nonce is not this sign-in's"),
        ({"nonce": None}, "lacks the nonce claim"),
        ({"aud": "another-client"}, "meant for 'another-client'"),
        ({"aud": [CLIENT, "api"]}, "lacks the azp claim"),
        ({"aud": [CLIENT, "api"], "azp": "api"}, "issued to another client"),
        ({"iss": "https://evil.example.com"}, "issued by 'https://evil.example.com'"),
        ({"exp": -120}, "expired"),  # seconds from when the test runs (not when it is collected)
        ({"iat": 600}, "not valid yet"),
        ({"sub": None}, "lacks the sub claim"),
    ],
    ids=[
        "wrong-nonce",
        "no-nonce",
        "wrong-aud",
        "several-aud-no-azp",
        "wrong-azp",
        "wrong-iss",
        "expired",
        "future",
        "no-sub",
    ],
)
def test_an_id_token_whose_claims_do_not_hold_is_refused(
    key: jwk.RSAKey, jwks: dict[str, Any], claims: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "iat") else v for k, v in claims.items()}
    with pytest.raises(SignInFailed, match=reason):
        verify_id_token(id_token(key, **claims), jwks, ISSUER, CLIENT, NONCE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_alg_none_is_refused(key: jwk.RSAKey, jwks: dict[str, Any]) -> None:
    with warnings.catch_warnings():  # joserfc warns that "none" is deprecated, and makes the token all the same
        warnings.simplefilter("ignore")
        unsigned = jwt.encode(
            {"alg": "none", "kid": key.kid},
            {"iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": int(time.time()) + 300, "iat": int(time.time())}
            | {"nonce": NONCE},
            None,
            registry=JWSRegistry(algorithms=["none"]),
        )
    with pytest.raises(SignInFailed, match="signing algorithm is refused"):
        verify_id_token(unsigned, jwks, ISSUER, CLIENT, NONCE)


def test_hs256_signed_with_the_public_key_is_refused(key: jwk.RSAKey, jwks: dict[str, Any]) -> None:
    # joserfc will not make an HMAC key of a public key, so the forger signs with hmac directly
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
    body = {"iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": now + 300, "iat": now, "nonce": NONCE}
    payload = _b64(json.dumps(body).encode())
    for secret in (key.as_pem(private=False), json.dumps(jwks["keys"][0]).encode()):
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        with pytest.raises(SignInFailed, match="signing algorithm is refused"):
            verify_id_token(f"{header}.{payload}.{_b64(signature)}", jwks, ISSUER, CLIENT, NONCE)


def test_a_token_signed_by_a_key_not_in_the_jwks_is_refused(jwks: dict[str, Any]) -> None:
    stranger = jwk.RSAKey.generate_key(2048, parameters={"kid": "stranger"}, private=True)
    with pytest.raises(SignInFailed, match="does not publish"):
        verify_id_token(id_token(stranger), jwks, ISSUER, CLIENT, NONCE)
    impostor = jwk.RSAKey.generate_key(2048, parameters={"kid": "provider-key"}, private=True)  # the provider's kid
    with pytest.raises(SignInFailed, match="signature does not verify"):
        verify_id_token(id_token(impostor), jwks, ISSUER, CLIENT, NONCE)


def test_an_algorithm_the_provider_does_not_advertise_is_refused(key: jwk.RSAKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(SignInFailed, match="signing algorithm is refused"):
        verify_id_token(id_token(key), jwks, ISSUER, CLIENT, NONCE, algorithms=("PS256",))
    with pytest.raises(SignInFailed, match="not a well-formed"):
        verify_id_token("not.a-token", jwks, ISSUER, CLIENT, NONCE)


def test_verification_uses_the_time_given(key: jwk.RSAKey, jwks: dict[str, Any]) -> None:
    token = id_token(key)
    with pytest.raises(SignInFailed, match="expired"):
        verify_id_token(token, jwks, ISSUER, CLIENT, NONCE, now=time.time() + 3600)


# ---------------------------------------------------------------------- settings
def test_settings_say_what_is_missing() -> None:
    assert not OidcSettings.from_env({}).configured
    with pytest.raises(ConfigError, match=r"OIDC_CLIENT_ID .* PUBLIC_URL"):
        OidcSettings.from_env({"OIDC_ISSUER": "https://sso.example.com"})
    settings = OidcSettings.from_env(
        {"OIDC_ISSUER": "https://sso.example.com/realms/staff", "OIDC_CLIENT_ID": "d", "PUBLIC_URL": "https://docs/"}
    )
    assert settings.redirect_uri == "https://docs/auth/oidc/callback"
    assert settings.display_name == "sso.example.com"
    assert settings.model_copy(update={"provider_name": "Acme SSO"}).display_name == "Acme SSO"
