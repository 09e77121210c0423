"""The web page's sign-in through an OpenID provider, in Debian's Chromium (Playwright, as
tests/test_page_sign_in.py): the service signs people in only through the certified
`oidc-provider` on Node (tests/identity_provider.py), whose own login and consent forms the
browser fills. Olga (staff, legal) edits `contracts` and reads `handbook`; Nora's provider sends
no groups.

One page serves Olga's tests in file order: the provider's button and the round trip to her
spaces, then a session ended on the server while she types, and signing in again through the
provider with her question kept. Nora and the Russian page have browser contexts of their own.
Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from docassist.pipelines.llm.llama_server import free_port
from tests.identity_provider import OidcProvider
from tests.inprocess import InProcessService, start_in_process
from tests.test_page import browser, shot  # noqa: F401  (browser: the fixture)

pytestmark = pytest.mark.slow

ACCESS_RULES = "staff:handbook:reader,legal:contracts:editor"
PROVIDER_NAME = "Staff SSO"
COOKIE = "docassist_session"
OLGA = ("u-olga-page", "Ольга Смирнова")
NORA = ("u-nora-page", "Nora None")
QUESTION = "Какой срок уведомления о расторжении договора?"


@pytest.fixture(scope="module")
def svc(
    tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str], oidc_provider: OidcProvider
) -> Iterator[InProcessService]:
    port = free_port()  # the provider must know the callback before the service starts
    public = f"http://127.0.0.1:{port}"
    oidc_provider.start([f"{public}/auth/oidc/callback"])
    oidc_provider.set_account(OLGA[0], name=OLGA[1], groups=["staff", "legal"])
    oidc_provider.set_account(NORA[0], name=NORA[1], groups=None)
    env = oidc_provider.env(public)
    del env["OIDC_SCOPES"]  # the defaults: the provider offers a `groups` scope, which is then asked for
    service = start_in_process(
        tmp_path_factory.mktemp("page-oidc"),
        port=port,
        **env,
        OIDC_PROVIDER_NAME=PROVIDER_NAME,
        ACCESS_RULES=ACCESS_RULES,
        **llama_env,
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(browser: Browser, svc: InProcessService, oidc_provider: OidcProvider, errors: list[str]) -> Iterator[Page]:  # noqa: F811
    page = open_app(browser, svc.url, oidc_provider, errors)
    yield page
    page.context.close()
    assert not errors, f"script errors on the page: {errors}"


def open_app(browser: Browser, app_url: str, provider: OidcProvider, errors: list[str], locale: str = "en-US") -> Page:  # noqa: F811
    """`open_page`, watched as `watch` does but only while the app's page is shown: going to the
    provider is the point of its button, and the provider's own pages (their web fonts) are not the app's."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()

    def on_app(url: str) -> bool:
        return url.startswith(app_url + "/")

    def console(msg: ConsoleMessage) -> None:
        if on_app(page.url) and ("Content Security Policy" in msg.text or "Refused to" in msg.text):
            errors.append(msg.text)

    def request(req: Request) -> None:
        if req.is_navigation_request():
            if not (on_app(req.url) or req.url.startswith(provider.issuer + "/")):
                errors.append(f"went to {req.url}")
        elif on_app(req.frame.url) and not on_app(req.url) and not req.url.startswith("data:"):
            errors.append(f"fetched {req.url}")

    page.on("pageerror", lambda exc: errors.append(str(exc)) if on_app(page.url) else None)
    page.on("console", console)
    page.on("request", request)
    page.goto(app_url + "/")
    return page


def sign_in_through_provider(page: Page, app_url: str, provider: OidcProvider, sub: str) -> list[str]:
    """Click the provider's button, fill whichever of its forms it shows — login (any password),
    then consent; one that remembers the browser sends it straight back — until the page is back.
    The forms shown, in order."""
    shown: list[str] = []
    with page.expect_navigation():  # to the provider's form, or (remembered) back already
        page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").click()
    while page.url.startswith(provider.issuer + "/"):
        assert len(shown) < 3, f"the provider keeps asking: {shown} at {page.url}"
        with page.expect_navigation():
            if page.locator("input[name=login]").count():
                shown.append("login")
                page.locator("input[name=login]").fill(sub)
                page.locator("input[name=password]").fill("any-password")
                page.get_by_role("button", name="Sign-in").click()
            else:
                shown.append("consent")
                page.get_by_role("button", name="Continue").click()
    assert page.url.startswith(app_url + "/") and "/auth/" not in page.url, page.url
    return shown


def session_cookie(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies() if c["name"] == COOKIE}


def test_the_provider_button_signs_olga_in_to_her_spaces(
    page: Page, svc: InProcessService, oidc_provider: OidcProvider
):
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    button = page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}")
    expect(button).to_be_visible()
    expect(button).to_be_focused()
    expect(page.get_by_label("Password")).to_be_hidden()  # no LDAP: no password form, no "or"
    expect(page.get_by_label("Username")).to_be_hidden()
    expect(page.get_by_text("or", exact=True)).to_be_hidden()
    assert not session_cookie(page)
    shot(page, "oidc-sign-in.png", full_page=False)

    assert sign_in_through_provider(page, svc.url, oidc_provider, OLGA[0]) == ["login", "consent"]
    banner = page.get_by_role("banner")
    expect(banner).to_contain_text(f"Signed in as {OLGA[1]}")
    expect(banner.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_hidden()
    assert session_cookie(page)

    spaces = page.get_by_label("Space", exact=True)
    expect(spaces.locator("option")).to_have_text(["contracts (editor)", "handbook (reader)"])
    spaces.select_option("contracts")
    expect(page.get_by_role("heading", name="Documents in “contracts”")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()
    shot(page, "oidc-signed-in.png")
    spaces.select_option("handbook")
    expect(page.get_by_role("heading", name="Documents in “handbook”")).to_be_visible()
    expect(page.get_by_text("As a reader you can search, ask and read the documents here.")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_hidden()


def test_a_question_typed_before_the_session_ended_survives_the_provider(
    page: Page, svc: InProcessService, oidc_provider: OidcProvider
):
    page.get_by_label("Space", exact=True).select_option("contracts")
    expect(page.get_by_role("heading", name="Documents in “contracts”")).to_be_visible()
    page.get_by_label("Question").fill(QUESTION)
    # the session ends on the server (signed out elsewhere); the browser still holds its cookie
    assert httpx.post(f"{svc.url}/auth/logout", cookies=session_cookie(page), timeout=30).status_code == 204
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your session has ended. Sign in again: the question you were typing is kept."
    )
    expect(page.get_by_label("Question")).to_be_hidden()
    expect(page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}")).to_be_visible()

    with page.expect_request(lambda r: r.url.startswith(f"{oidc_provider.issuer}/auth?")):  # away and back
        assert sign_in_through_provider(page, svc.url, oidc_provider, OLGA[0]) == []  # it remembers her: no form
    expect(page.get_by_role("banner")).to_contain_text(OLGA[1])
    expect(page.get_by_label("Question")).to_have_value(QUESTION)
    expect(page.get_by_label("Space", exact=True)).to_have_value("contracts")
    expect(page.get_by_role("heading", name="Documents in “contracts”")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="session has ended")).to_be_hidden()
    shot(page, "oidc-question-kept.png", full_page=False)


def test_someone_whose_provider_sends_no_groups_is_told_whom_to_ask(
    browser: Browser,  # noqa: F811
    svc: InProcessService,
    oidc_provider: OidcProvider,
):
    errors: list[str] = []
    page = open_app(browser, svc.url, oidc_provider, errors)
    assert sign_in_through_provider(page, svc.url, oidc_provider, NORA[0]) == ["login", "consent"]
    expect(page.get_by_role("heading", name="No space is open to you")).to_be_visible()
    expect(page.get_by_text(f"{PROVIDER_NAME} sent no groups for you, so no space is open to you.")).to_contain_text(
        "Ask your administrator to add you to a group that has access."
    )
    expect(page.get_by_role("banner")).to_contain_text(NORA[1])
    expect(page.get_by_label("Question")).to_be_hidden()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_hidden()
    expect(page).to_have_url(f"{svc.url}/")  # the callback's `sign_in_error=no_groups` is taken out of the address
    shot(page, "oidc-no-groups.png", full_page=False)
    page.context.close()
    assert not errors, errors


def test_the_provider_button_speaks_russian(browser: Browser, svc: InProcessService, oidc_provider: OidcProvider):  # noqa: F811
    errors: list[str] = []
    page = open_app(browser, svc.url, oidc_provider, errors, locale="ru-RU")
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    expect(page.get_by_role("link", name=f"Войти через {PROVIDER_NAME}", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}")).to_have_count(0)
    expect(page.get_by_label("Пароль")).to_be_hidden()
    page.context.close()
    assert not errors, errors
