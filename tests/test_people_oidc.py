"""Sign-in through OpenID Connect, over real HTTP: the service in this process against the
certified `oidc-provider` run by Node (`tests/identity_provider.py`), its forms driven as a
browser would. A session after the provider's callback, the person's groups as rights, forged and
replayed callbacks starting nothing, a person whose provider sends no groups, rights that follow
the provider, and the provider going away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from docassist.pipelines.llm.llama_server import free_port
from tests.identity_provider import OidcProvider
from tests.inprocess import InProcessService, start_in_process

RULES = "staff:handbook:reader,legal:contracts:editor"


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider
) -> Iterator[tuple[InProcessService, OidcProvider]]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    oidc_provider.start([f"{public}/auth/oidc/callback"])
    oidc_provider.set_account("u-olga", name="Ольга Смирнова", groups=["staff", "legal"])
    oidc_provider.set_account("u-pete", name="Pete", groups=["staff"])
    oidc_provider.set_account("u-none", name="Nora None", groups=None)
    env = oidc_provider.env(public)
    del env["OIDC_SCOPES"]  # the defaults: the provider offers a `groups` scope, which is then asked for
    svc = start_in_process(
        tmp_path_factory.mktemp("oidc"),
        port=port,
        **env,
        ACCESS_RULES=RULES,
        AUTH_REFRESH_S="1",
    )
    yield svc, oidc_provider
    svc.stop()


def callback_of(svc: InProcessService, provider: OidcProvider, sub: str, browser: httpx.Client) -> str:
    """Start a sign-in on docassist, sign in on the provider's forms: the callback URL it sends back."""
    start = browser.get(f"{svc.url}/auth/oidc/login", params={"return_to": "/?space=contracts"})
    assert start.status_code == 302, start.text
    assert start.headers["location"].startswith(provider.issuer)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
    return provider.login(browser, start.headers["location"], sub)


def test_a_person_signs_in_through_the_provider_with_their_groups_as_rights(
    signed: tuple[InProcessService, OidcProvider],
):
    svc, provider = signed
    with httpx.Client() as browser:
        back = callback_of(svc, provider, "u-olga", browser)
        assert back.startswith(svc.url + "/auth/oidc/callback?")
        done = browser.get(back)
        assert done.status_code == 302 and done.headers["location"] == "/?space=contracts"
        assert "HttpOnly" in done.headers["set-cookie"]
        me = browser.get(f"{svc.url}/auth/me").json()
        assert me["user"] == {"id": "oidc:u-olga", "name": "Ольга Смирнова", "groups": ["legal", "staff"]}
        assert {s["space_id"]: s["role"] for s in me["spaces"]} == {"contracts": "editor", "handbook": "reader"}
        # the same callback again: its state was used, nothing starts
        replay = httpx.get(back)
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "sign_in_failed"
        assert "set-cookie" not in replay.headers
    config = httpx.get(f"{svc.url}/auth/config").json()
    assert config["oidc"] and not config["ldap"] and config["oidc_name"]


def test_forged_callbacks_start_no_session(signed: tuple[InProcessService, OidcProvider]):
    svc, provider = signed
    with httpx.Client() as browser:
        back = callback_of(svc, provider, "u-pete", browser)
        query = parse_qs(urlsplit(back).query)
        code, state = query["code"][0], query["state"][0]
        forged_state = httpx.get(f"{svc.url}/auth/oidc/callback", params={"code": code, "state": state + "x"})
        assert forged_state.status_code == 401 and forged_state.json()["error"]["code"] == "sign_in_failed"
        # a browser is sent back to the page, told why
        page = httpx.get(
            f"{svc.url}/auth/oidc/callback", params={"code": code, "state": "nope"}, headers={"Accept": "text/html"}
        )
        assert page.status_code == 302 and page.headers["location"] == "/?sign_in_error=sign_in_failed"
        # another sign-in's state with this code: the provider refuses the code (PKCE, nonce)
        other = parse_qs(urlsplit(callback_of(svc, provider, "u-pete", browser)).query)["state"][0]
        swapped = httpx.get(f"{svc.url}/auth/oidc/callback", params={"code": code, "state": other})
        assert swapped.status_code == 401
        assert httpx.get(f"{svc.url}/auth/oidc/callback", params={"error": "access_denied"}).status_code == 401
    # a callback of someone's own sign-in, opened in another browser (login CSRF): no session there
    with httpx.Client() as attacker, httpx.Client() as victim:
        theirs = callback_of(svc, provider, "u-pete", attacker)
        victim.get(f"{svc.url}/auth/oidc/login")  # the victim's browser holds a sign-in of its own
        opened = victim.get(theirs)
        assert opened.status_code == 401 and "docassist_session" not in victim.cookies
        assert "another browser" in opened.json()["error"]["message"]
        # the browser that started it still completes it: a refused try elsewhere does not use it up
        assert attacker.get(theirs).status_code == 302 and "docassist_session" in attacker.cookies
    assert len(svc.assistant.identity.audit.page(_failed(), 50, None).entries) >= 3


def _failed():
    from docassist.pipelines.identity.audit import AuditFilter

    return AuditFilter(action="sign_in_failed")


def test_a_provider_that_sends_no_groups_opens_no_space_and_says_why(signed: tuple[InProcessService, OidcProvider]):
    svc, provider = signed
    with httpx.Client() as browser:
        done = browser.get(callback_of(svc, provider, "u-none", browser))
        assert done.status_code == 302 and done.headers["location"] == "/?sign_in_error=no_groups"
        me = browser.get(f"{svc.url}/auth/me").json()
        assert me["no_groups"] is True and me["spaces"] == []
        assert browser.get(f"{svc.url}/documents", params={"space_id": "handbook"}).status_code == 403


def test_rights_follow_the_provider_and_survive_one_failed_refresh(signed: tuple[InProcessService, OidcProvider]):
    svc, provider = signed
    provider.set_account("u-ria", name="Ria", groups=["staff", "legal"])
    with httpx.Client() as browser:
        browser.get(callback_of(svc, provider, "u-ria", browser))
        assert browser.get(f"{svc.url}/documents", params={"space_id": "contracts"}).status_code == 200
        provider.set_account("u-ria", name="Ria", groups=["staff"])
        time.sleep(1.2)
        assert browser.get(f"{svc.url}/documents", params={"space_id": "contracts"}).status_code == 403
        assert browser.get(f"{svc.url}/documents", params={"space_id": "handbook"}).status_code == 200
        provider.delete_account("u-ria")
        time.sleep(1.2)
        gone = browser.get(f"{svc.url}/auth/me")
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "session_expired"


def test_a_provider_that_is_away_answers_503_and_comes_back(signed: tuple[InProcessService, OidcProvider]):
    svc, provider = signed
    provider.stop()
    try:
        r = httpx.get(f"{svc.url}/auth/oidc/login")
        assert r.status_code in (302, 503)  # discovery may be cached: then the token exchange fails
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "identity_provider_unavailable" and int(r.headers["retry-after"]) > 0
    finally:
        provider.start([f"{svc.url}/auth/oidc/callback"])
    provider.set_account("u-pete", name="Pete", groups=["staff"])
    with httpx.Client() as browser:
        done = browser.get(callback_of(svc, provider, "u-pete", browser))
        assert done.status_code == 302 and browser.get(f"{svc.url}/auth/me").status_code == 200
