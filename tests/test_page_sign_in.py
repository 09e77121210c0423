"""The web page's sign-in in Debian's Chromium (Playwright, as tests/test_page.py) against a
service that signs people in through a real slapd (tests/directory.py): alice (engineering,
readers) is an editor of `eng`, an administrator of `ops` and a reader of `pub`; bob (readers) a
reader of `eng` and `pub`.

One page serves alice's tests in file order, as she would use it: a wrong password, signing in,
her spaces and what each lets her do, a session ended on the server while she types, signing out,
the directory down, too many attempts (last: it throttles the address). Bob, the Russian page and
a failed provider sign-in have browser contexts of their own. Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import Service
from tests.directory import Slapd
from tests.inprocess import start_in_process
from tests.test_page import browser, doc_item, open_page, shot  # noqa: F401  (browser: the fixture)

pytestmark = pytest.mark.slow

ACCESS_RULES = "engineering:eng:editor,engineering:ops:admin,readers:eng|pub:reader"
COOKIE = "docassist_session"
OPS_DOC = ("ops", "runbook.md", "Перезапуск сервиса: сначала остановить очередь.")
QUESTION = "Какие острова есть на Байкале, и какой из них самый большой?"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str], slapd: Slapd) -> Iterator[Service]:
    service = start_in_process(
        tmp_path_factory.mktemp("sign-in"), **slapd.env(), ACCESS_RULES=ACCESS_RULES, **llama_env
    )
    # documents uploaded by alice through the API: one in eng for the lists, one in ops for its audit trail
    with httpx.Client(base_url=service.url, timeout=60) as http:
        assert http.post("/auth/login", json={"username": "alice", "password": "alice-password"}).status_code == 200
        for space, name, text in (("eng", "olkhon.md", "Ольхон — самый большой остров Байкала."), OPS_DOC):
            r = http.post("/ingest", files={"file": (name, text.encode())}, data={"space_id": space, "wait": "true"})
            assert r.status_code == 200, r.text
            service.config[name] = r.json()["doc_id"]
    yield service
    service.stop()


@pytest.fixture(scope="module")
def errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(browser: Browser, svc: Service, errors: list[str]) -> Iterator[Page]:  # noqa: F811
    page = open_page(browser, svc.url, errors)
    yield page
    page.context.close()
    assert not errors, f"script errors on the page: {errors}"


def sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def session_cookie(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies() if c["name"] == COOKIE}


def test_a_wrong_password_is_said_plainly(page: Page):
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("API key")).to_be_hidden()  # people sign in: no key field
    expect(page.get_by_label("Space", exact=True)).to_be_hidden()  # nor a space name to type
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_hidden()
    sign_in(page, "alice", "not-her-password")
    expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.get_by_label("Password")).to_have_value("")
    assert not session_cookie(page)
    shot(page, "sign-in.png", full_page=False)


def test_alice_signs_in_and_sees_her_spaces_with_what_each_lets_her_do(page: Page):
    sign_in(page, "alice", "alice-password")
    banner = page.get_by_role("banner")
    expect(banner).to_contain_text("Signed in as Alice Liddell")
    expect(banner.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_hidden()

    spaces = page.get_by_label("Space", exact=True)
    expect(spaces.locator("option")).to_have_text(["eng (editor)", "ops (administrator)", "pub (reader)"])
    spaces.select_option("eng")
    expect(page.get_by_role("heading", name="Documents in “eng”")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()
    expect(doc_item(page, "olkhon.md").get_by_role("button", name="Delete: olkhon.md")).to_be_visible()
    expect(page.get_by_role("heading", name="Audit")).to_be_hidden()  # an editor, not an administrator

    spaces.select_option("pub")
    expect(page.get_by_role("heading", name="Documents in “pub”")).to_be_visible()
    expect(page.get_by_text("As a reader you can search, ask and read the documents here.")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_hidden()
    expect(page.get_by_role("heading", name="Add documents")).to_be_hidden()


def test_an_administrator_reads_the_spaces_audit_trail(page: Page, svc: Service):
    page.get_by_label("Space", exact=True).select_option("ops")
    expect(page.get_by_role("heading", name="Audit")).to_be_visible()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()  # an admin edits too
    trail = page.get_by_role("table", name="Audit")
    expect(trail.get_by_role("columnheader")).to_have_text(
        ["Time", "Action", "Person", "Document or conversation", "Client"]
    )
    upload = trail.get_by_role("row").filter(has_text="upload")
    expect(upload).to_have_count(1)
    expect(upload).to_contain_text("Alice Liddell")
    expect(upload).to_contain_text(f"document {svc.config['runbook.md'][:12]}…")
    expect(upload).to_contain_text("127.0.0.1")
    expect(page.get_by_text("“ops”: the latest")).to_be_visible()
    shot(page, "signed-in-admin.png")
    page.set_viewport_size({"width": 375, "height": 812})  # the trail scrolls in its card, not the page
    try:
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "signed-in-narrow.png")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_a_session_ended_on_the_server_keeps_the_question_being_typed(page: Page, svc: Service):
    page.get_by_label("Space", exact=True).select_option("eng")
    expect(doc_item(page, "olkhon.md")).to_be_visible()
    page.get_by_label("Question").fill(QUESTION)
    # the session ends on the server (signed out elsewhere); the browser still holds its cookie
    assert httpx.post(f"{svc.url}/auth/logout", cookies=session_cookie(page), timeout=30).status_code == 204
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your session has ended. Sign in again: the question you were typing is kept."
    )
    expect(page.get_by_label("Question")).to_be_hidden()
    page.reload()  # the question is kept in the tab, not only on the page
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, "alice", "alice-password")
    expect(page.get_by_label("Question")).to_have_value(QUESTION)
    expect(page.get_by_label("Space", exact=True)).to_have_value("eng")
    expect(page.get_by_role("heading", name="Documents in “eng”")).to_be_visible()


def test_signing_out_returns_to_the_form_and_ends_the_session(page: Page, svc: Service):
    cookie = session_cookie(page)
    assert httpx.get(f"{svc.url}/auth/me", cookies=cookie, timeout=30).status_code == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="You are signed out.")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()
    expect(page.get_by_role("banner").get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("heading", name="Documents in “eng”")).to_be_hidden()
    assert httpx.get(f"{svc.url}/auth/me", cookies=cookie, timeout=30).status_code == 401
    page.reload()  # nobody is signed in any more: the form again, not her spaces
    expect(page.get_by_label("Username")).to_be_visible()
    expect(page.get_by_label("Question")).to_be_hidden()


def test_a_reader_sees_no_upload_and_no_delete(browser: Browser, svc: Service):  # noqa: F811
    errors: list[str] = []
    page = open_page(browser, svc.url, errors)
    sign_in(page, "bob", "bob-password")
    expect(page.get_by_role("banner")).to_contain_text("Bob Builder")
    spaces = page.get_by_label("Space", exact=True)
    expect(spaces.locator("option")).to_have_text(["eng (reader)", "pub (reader)"])
    spaces.select_option("eng")
    item = doc_item(page, "olkhon.md")
    expect(item.get_by_role("button", name="Summarize: olkhon.md")).to_be_visible()
    expect(item.get_by_role("button", name="Delete: olkhon.md")).to_be_hidden()
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_hidden()
    page.context.close()
    assert not errors, errors


def test_the_sign_in_form_speaks_russian(browser: Browser, svc: Service):  # noqa: F811
    errors: list[str] = []
    page = open_page(browser, svc.url, errors, locale="ru-RU")
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    expect(page.get_by_label("Имя пользователя")).to_be_visible()
    expect(page.get_by_label("Пароль")).to_be_visible()
    page.get_by_label("Имя пользователя").fill("bob")
    page.get_by_label("Пароль").fill("wrong")
    page.get_by_role("button", name="Войти", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Неверное имя пользователя или пароль.")
    page.context.close()
    assert not errors, errors


def test_a_directory_that_does_not_answer_is_said_so(page: Page, slapd: Slapd):
    slapd.stop()
    try:
        sign_in(page, "alice", "alice-password")
        expect(page.get_by_role("alert")).to_have_text("The sign-in service is not answering. Try again in a minute.")
    finally:
        slapd.start()


def test_someone_in_no_group_is_told_whom_to_ask(browser: Browser, svc: Service, slapd: Slapd):  # noqa: F811
    slapd.add_user("page-nogroups", "nogroups-password", name="Nora Nogroups")  # in no group at all
    errors: list[str] = []
    page = open_page(browser, svc.url, errors)
    sign_in(page, "page-nogroups", "nogroups-password")
    expect(page.get_by_role("heading", name="No space is open to you")).to_be_visible()
    expect(page.get_by_text("The directory sent no groups for you, so no space is open to you.")).to_contain_text(
        "Ask your administrator"
    )
    expect(page.get_by_role("banner")).to_contain_text("Nora Nogroups")
    expect(page.get_by_label("Question")).to_be_hidden()
    page.context.close()
    assert not errors, errors


def test_a_failed_provider_sign_in_is_explained_and_taken_out_of_the_address(browser: Browser, svc: Service):  # noqa: F811
    errors: list[str] = []
    page = open_page(browser, svc.url, errors)
    page.goto(f"{svc.url}/?sign_in_error=identity_provider_unavailable")
    expect(page.get_by_role("alert")).to_have_text("The sign-in service is not answering. Try again in a minute.")
    expect(page).to_have_url(f"{svc.url}/")
    page.context.close()
    assert not errors, errors


def test_too_many_attempts_say_how_long_to_wait(page: Page):
    """Last: the client address stays throttled for a minute."""
    for _ in range(6):  # the limit is 5 failures a minute, some of them spent above
        with page.expect_response(lambda r: r.url.endswith("/auth/login")) as answer:
            sign_in(page, "mallory", "guess")
        if answer.value.status == 429:
            break
        expect(page.get_by_role("alert")).to_have_text("The username or password is wrong.")
    assert answer.value.status == 429
    wait_s = answer.value.headers["retry-after"]
    expect(page.get_by_role("alert")).to_have_text(f"Too many attempts. Try again in {wait_s} s.")
    assert re.fullmatch(r"[1-9]\d*", wait_s)
