"""The web page at `/` in a real browser against a real `docassist serve`: Debian's Chromium
driven by Playwright (never `playwright install`: no browser is downloaded).

One service (1,024-token context window, so a long document takes the map-reduce path in
seconds) and one page serve the tests in file order, as a person would use them: upload, see the
documents, stream summaries, ask, delete, an unsupported file, a narrow screen, the page's
language. The API-key test has its own service. Screenshots of the main states go to
`test-artifacts/`; with `DOCASSIST_SCREENSHOTS=<folder>` the main view is also saved there as
`page.png`.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from docassist.pipelines.conversations.store import ConversationStore, Turn, new_message
from docassist.pipelines.storage.database import Database
from tests.conftest import FIXTURES, Service, ingest, marked_box, pdf_pages, xquad_article
from tests.inprocess import start_in_process

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SPACE = "page_test"
LLM_S = 120_000  # ms: the embedded model is tiny and slow on shared CPUs
# what the page shows after a request waits on the service, which shares two cores with another
# test worker (`pytest -n 2`): 15 s before an expectation fails, not Playwright's 5
expect.set_options(timeout=15_000)
CYRILLIC = re.compile(r"[А-Яа-яЁё]{3,}")


def shot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    service = start_in_process(
        tmp_path_factory.mktemp("page"), LLM_CONTEXT_WINDOW="1024", MAX_UPLOAD_MB="1", **llama_env
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium chromium-driver); "
            "`playwright install` is not used",
            pytrace=False,
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser: Browser, url: str, errors: list[str], locale: str = "en-US") -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch(page, url, errors)
    page.goto(url + "/")
    return page


def watch(page: Page, url: str, errors: list[str]) -> None:
    """Script errors, anything the Content-Security-Policy blocked, and any request that leaves
    the service's origin are errors of the page."""

    def console(msg) -> None:
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            errors.append(msg.text)

    def request(req) -> None:
        if not req.url.startswith((url, "data:")):
            errors.append(f"fetched {req.url}")

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", console)
    page.on("request", request)


@pytest.fixture(scope="module")
def page(browser: Browser, svc: Service) -> Iterator[Page]:
    errors: list[str] = []
    page = open_page(browser, svc.url, errors)
    page.get_by_label("Space", exact=True).fill(SPACE)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_role("heading", name=f"Documents in “{SPACE}”")).to_be_visible()
    yield page
    page.context.close()
    assert not errors, f"script errors on the page: {errors}"


def doc_item(page: Page, filename: str):
    return page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=filename, exact=True))


def listed(svc: Service) -> dict[str, dict]:
    docs = httpx.get(f"{svc.url}/documents", params={"space_id": SPACE}, timeout=30).json()["documents"]
    return {d["filename"]: d for d in docs}


def test_the_page_is_served_by_the_service_and_the_api_description_still_works(svc: Service):
    r = httpx.get(f"{svc.url}/", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<meta charset="utf-8">' in r.text and "/static/app.js" in r.text
    assert "http://" not in r.text and "https://" not in r.text, "nothing is loaded from elsewhere"
    for asset in ("app.js", "app.css"):
        a = httpx.get(f"{svc.url}/static/{asset}", timeout=30)
        assert a.status_code == 200 and "charset=utf-8" in a.headers["content-type"]
        assert "https://" not in a.text
    paths = httpx.get(f"{svc.url}/openapi.json", timeout=30).json()["paths"]
    assert "/" not in paths and "/ingest" in paths


def test_the_api_reference_works_offline_under_the_pages_security_policy(browser: Browser, svc: Service):
    """/docs is Swagger UI from the installed package: it renders every route, fetches nothing
    from elsewhere, and the Content-Security-Policy (same origin only, nothing inline) blocks
    nothing it needs."""
    html = httpx.get(f"{svc.url}/docs", timeout=30)
    assert html.status_code == 200 and "http://" not in html.text and "https://" not in html.text
    assert "frame-ancestors 'none'" in html.headers["content-security-policy"]
    errors: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    watch(page, svc.url, errors)
    page.goto(f"{svc.url}/docs")
    expect(page.get_by_role("heading", name=re.compile("docassist"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/summarize-stream", exact=True)).to_be_visible()
    page.get_by_text("/search", exact=True).click()  # open an operation: its schema renders too
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    context.close()
    assert not errors, errors


def test_uploaded_documents_are_listed_with_their_languages(page: Page, svc: Service):
    expect(page.get_by_label("API key")).to_be_hidden()  # no keys on this service: no key prompt
    page.get_by_label("Files", exact=True).set_input_files(
        [FIXTURES / "baikal_ru.pdf", FIXTURES / "photosynthesis_en.docx"]
    )
    queue = page.get_by_role("list", name="Upload queue")
    expect(queue.get_by_role("listitem")).to_have_count(2)
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(queue.get_by_role("listitem").filter(has_text="baikal_ru.pdf")).to_contain_text(
        re.compile(r"added: Russian \(ru\), 1 passage, \d+ tokens"), timeout=60_000
    )
    expect(queue.get_by_role("listitem").filter(has_text="photosynthesis_en.docx")).to_contain_text(
        re.compile(r"added: English \(en\), \d+ passages?, \d+ tokens"), timeout=60_000
    )
    expect(doc_item(page, "baikal_ru.pdf")).to_contain_text("Language: Russian (ru)")
    expect(doc_item(page, "photosynthesis_en.docx")).to_contain_text("Language: English (en)")
    expect(doc_item(page, "baikal_ru.pdf")).to_contain_text("No summary yet")
    assert set(listed(svc)) == {"baikal_ru.pdf", "photosynthesis_en.docx"}

    # the same file again, chosen from the keyboard through the drop zone, is recognized, not indexed twice
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose files or drop them here").press("Enter")
    assert chooser.value.is_multiple()
    chooser.value.set_files([FIXTURES / "baikal_ru.pdf"])
    page.get_by_role("button", name="Upload", exact=True).press("Enter")
    expect(queue.get_by_role("listitem")).to_have_count(1)
    expect(queue).to_contain_text("already uploaded (Russian (ru))", timeout=60_000)
    expect(page.get_by_role("heading", name="baikal_ru.pdf", exact=True)).to_have_count(1)
    shot(page, "uploaded.png")


def test_refused_files_are_explained_in_words(page: Page, tmp_path: Path):
    (tmp_path / "notes.xyz").write_text("some notes", encoding="utf-8")
    (tmp_path / "blank.txt").write_text("  \n ", encoding="utf-8")
    (tmp_path / "big.txt").write_text("Большой текст. " * 80_000, encoding="utf-8")  # > MAX_UPLOAD_MB=1
    names = ("notes.xyz", "blank.txt", "big.txt")
    page.get_by_label("Files", exact=True).set_input_files([tmp_path / n for n in names])
    page.get_by_role("button", name="Upload", exact=True).click()
    queue = page.get_by_role("list", name="Upload queue")
    unsupported = queue.get_by_role("listitem").filter(has_text="notes.xyz")
    expect(unsupported).to_contain_text("This type of file is not supported (use .txt, .md, .pdf, .docx, .html, .pptx")
    expect(unsupported).to_contain_text("unsupported file type '.xyz'")  # the service's own message beside ours
    expect(queue.get_by_role("listitem").filter(has_text="blank.txt")).to_contain_text("No text was found in the file.")
    expect(queue.get_by_role("listitem").filter(has_text="big.txt")).to_contain_text(
        "The file is too large for this service."
    )
    for name in names:
        expect(page.get_by_role("heading", name=name)).to_have_count(0)
    shot(page, "refused.png")


def test_a_long_upload_shows_its_passages_being_indexed_until_it_is_added(page: Page, tmp_path: Path):
    long_doc = tmp_path / "long_report_en.txt"  # some forty passages: longer than INGEST_WAIT_S, answered 202
    long_doc.write_text("\n\n".join(xquad_article("en", i) for i in range(8, 16)), encoding="utf-8")
    page.get_by_label("Files", exact=True).set_input_files([long_doc])
    page.get_by_role("button", name="Upload", exact=True).click()
    row = page.get_by_role("list", name="Upload queue").get_by_role("listitem").filter(has_text="long_report_en.txt")
    expect(row).to_contain_text(re.compile(r"indexing passages: \d+ of \d+"), timeout=60_000)
    expect(row.get_by_role("progressbar", name=re.compile(r"indexing passages"))).to_be_visible()
    shot(page, "upload-progress.png", full_page=False)
    expect(row).to_contain_text(re.compile(r"added: English \(en\), \d+ passages, [\d,]+ tokens"), timeout=240_000)
    expect(doc_item(page, "long_report_en.txt")).to_contain_text("Language: English (en)")


def test_a_long_summary_shows_its_plan_and_progress_and_closing_it_cancels_the_work(
    page: Page, svc: Service, tmp_path: Path
):
    long_doc = tmp_path / "black_death_ru.txt"
    long_doc.write_text(xquad_article("ru", 8), encoding="utf-8")
    page.get_by_label("Files", exact=True).set_input_files([long_doc])
    page.get_by_role("button", name="Upload", exact=True).click()
    item = doc_item(page, "black_death_ru.txt")
    expect(item).to_contain_text("Language: Russian (ru)", timeout=60_000)
    doc_id = listed(svc)["black_death_ru.txt"]["doc_id"]

    panel = page.get_by_role("region", name="Summary: black_death_ru.txt")
    item.get_by_role("button", name="Summarize").click()
    expect(panel).to_contain_text(re.compile(r"Plan: the document is read in \d+ parts"), timeout=LLM_S)
    expect(panel).to_contain_text(re.compile(r"Parts read: \d+ of \d+"), timeout=LLM_S)
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and f"[SUMMARY] Cancelled\n  doc_id={doc_id}" not in svc.log():
        time.sleep(0.2)
    assert f"[SUMMARY] Cancelled\n  doc_id={doc_id}" in svc.log(), "closing the summary stops the model's work"

    item.get_by_role("button", name="Summarize").click()
    # the run resumes: the parts read before the close come back from the memo at once, so the stage
    # may already have moved on to writing when the page is looked at
    expect(panel).to_contain_text(re.compile(r"Parts read: \d+ of \d+|Writing the summary"), timeout=LLM_S)
    expect(panel).to_contain_text(re.compile(r"about \d+ seconds? left|almost done"))
    progress = panel.get_by_role("progressbar")
    expect(progress).to_be_visible()
    shot(page, "summary-progress.png")
    expect(panel).to_contain_text("Done.", timeout=LLM_S)
    assert progress.evaluate("el => el.value") == 1
    expect(panel).to_contain_text(re.compile(r"Written in [\d.]+ s · \d+ calls to the model"))
    expect(panel).to_contain_text(CYRILLIC)
    expect(item).to_contain_text("Summary ready", timeout=30_000)


def test_a_summary_streams_in_russian_and_says_when_it_is_done(page: Page):
    # note every length the summary text has while it is written: it must grow piece by piece
    page.evaluate(
        """() => {
          window.__lengths = [];
          const text = document.getElementById('summary-text');
          new MutationObserver(() => window.__lengths.push(text.textContent.length))
            .observe(text, {childList: true, characterData: true, subtree: true});
        }"""
    )
    panel = page.get_by_role("region", name="Summary: baikal_ru.pdf")
    doc_item(page, "baikal_ru.pdf").get_by_role("button", name="Summarize").click()
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Plan: one pass over the whole document.", timeout=LLM_S)
    expect(panel.get_by_role("progressbar")).to_be_visible()
    expect(panel).to_contain_text(CYRILLIC, timeout=LLM_S)
    expect(panel).to_contain_text("Done.", timeout=LLM_S)
    expect(panel).to_contain_text(re.compile(r"Written in [\d.]+ s · 1 call to the model"))
    lengths = [n for n in page.evaluate("window.__lengths") if n > 0]
    assert len(set(lengths)) >= 3, f"the text arrived at once, not as it was written: {lengths}"
    # a sentence that rests on a passage opens it, marked, beside its page
    panel.locator(".summary-sentence").first.click()
    passage = page.get_by_role("dialog", name=re.compile(r"^baikal_ru\.pdf, p\. \d"))
    expect(passage.locator("mark")).to_contain_text(CYRILLIC)
    passage.get_by_role("button", name="Close").click()
    expect(doc_item(page, "baikal_ru.pdf")).to_contain_text("Summary ready", timeout=30_000)

    # asked again, it comes from the cache at once
    panel.get_by_role("button", name="Close").click()
    doc_item(page, "baikal_ru.pdf").get_by_role("button", name="Summarize").click()
    expect(panel).to_contain_text("A summary written earlier is ready.", timeout=30_000)
    expect(panel).to_contain_text(re.compile(r"From the cache: written .+, found in \d+ ms"))
    expect(panel).to_contain_text(CYRILLIC)
    shot(page, "summary.png")


def test_a_question_shows_the_sources_then_the_answer(page: Page):
    page.evaluate(
        """() => {
          window.__order = [];
          const note = (what) => () => { if (!window.__order.includes(what)) window.__order.push(what); };
          new MutationObserver(note('sources')).observe(document.getElementById('sources'), {childList: true});
          new MutationObserver(note('answer')).observe(document.getElementById('answer'),
            {childList: true, characterData: true, subtree: true});
        }"""
    )
    ask = page.get_by_role("region", name="Ask your documents")
    ask.get_by_label("Question").fill("Какая река вытекает из Байкала?")
    ask.get_by_label("Mode").select_option("auto")
    ask.get_by_label("Passages to use").fill("2")
    ask.get_by_role("button", name="Ask", exact=True).click()
    sources = ask.get_by_role("list", name="Sources")
    expect(sources.get_by_role("listitem").first).to_contain_text("baikal_ru.pdf, passage 1", timeout=LLM_S)
    expect(sources.get_by_role("listitem").first).to_contain_text(re.compile(r"relevance [\d.]+"))
    expect(sources.get_by_role("listitem").first).to_contain_text("p. 1")  # where the passage sits
    expect(ask).to_contain_text("Answered.", timeout=LLM_S)
    expect(ask).to_contain_text(re.compile("Answered from (a condensed summary of the passages|the passages directly)"))
    expect(ask).to_contain_text(re.compile(r"Answered in [\d.]+ s"))
    assert page.evaluate("window.__order")[:2] == ["sources", "answer"], "the sources come before the answer"
    answer = page.evaluate("document.getElementById('answer').textContent")
    assert CYRILLIC.search(answer), answer
    quoted = ask.get_by_role("list", name="Quoted from the documents")
    expect(quoted.get_by_role("listitem").first).to_contain_text("Ангара")  # the sentence the answer rests on
    expect(quoted.get_by_role("listitem").first).to_contain_text("baikal_ru.pdf")
    # the answer's sentence is marked with the number of the quote it rests on, which opens it
    support = ask.locator("#answer .support-mark").first
    expect(support).to_have_text("[1]")
    support.click()
    expect(page.get_by_role("dialog", name=re.compile(r"^baikal_ru\.pdf")).locator("mark")).to_contain_text("Ангара")
    page.keyboard.press("Escape")

    # the main view: documents, a streamed summary, an answer
    shot(page, "main.png")
    if folder := os.environ.get("DOCASSIST_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / "page.png"), full_page=True)

    sources.get_by_role("button", name=re.compile("baikal_ru.pdf, passage 1")).first.click()
    passage = page.get_by_role("dialog", name="baikal_ru.pdf, passage 1")
    expect(passage).to_be_visible()
    expect(passage).to_contain_text("The passage is highlighted in the document’s text.")
    expect(passage.locator("mark")).to_contain_text("Байкал")
    expect(passage.get_by_role("img", name="Page 1 of baikal_ru.pdf")).to_be_visible()  # the matching page
    shot(page, "passage.png", full_page=False)
    passage.get_by_role("button", name="Close").click()
    expect(passage).to_be_hidden()


def test_deleting_asks_first_and_removes_the_document(page: Page, svc: Service):
    item = doc_item(page, "photosynthesis_en.docx")
    item.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Delete the document?")
    expect(confirm).to_contain_text("“photosynthesis_en.docx” will be removed")
    shot(page, "delete-confirm.png", full_page=False)
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(item).to_be_visible()
    assert "photosynthesis_en.docx" in listed(svc)

    item.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("“photosynthesis_en.docx” was deleted.")).to_be_visible()
    expect(page.get_by_role("heading", name="photosynthesis_en.docx")).to_have_count(0)
    assert set(listed(svc)) == {"baikal_ru.pdf", "black_death_ru.txt", "long_report_en.txt"}


def test_a_375_px_wide_screen_needs_no_sideways_scrolling(page: Page):
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        expect(page.get_by_role("button", name="Upload", exact=True)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "narrow.png")
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_the_page_speaks_russian_and_remembers_it(page: Page, browser: Browser, svc: Service):
    page.get_by_label("Language", exact=True).select_option("ru")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("button", name="Загрузить", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=f"Документы в «{SPACE}»")).to_be_visible()
    expect(doc_item(page, "baikal_ru.pdf")).to_contain_text("Краткое содержание готово")
    expect(page.get_by_role("region", name="Вопрос по документам")).to_contain_text("Ответ готов.")
    expect(page.get_by_role("list", name="Источники").get_by_role("listitem").first).to_contain_text("стр. 1")
    expect(page.locator("#drop-hint")).to_contain_text("сканы и изображения .png .jpg .tiff")
    page.reload()
    expect(page.get_by_label("Пространство", exact=True)).to_have_value(SPACE)  # both remembered
    expect(page.get_by_role("button", name="Загрузить", exact=True)).to_be_visible()
    shot(page, "russian.png")
    page.get_by_label("Язык", exact=True).select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # a browser set to Russian gets the page in Russian at once
    errors: list[str] = []
    ru = open_page(browser, svc.url, errors, locale="ru-RU")
    try:
        expect(ru.get_by_role("button", name="Загрузить", exact=True)).to_be_visible()
        expect(ru.locator("html")).to_have_attribute("lang", "ru")
        expect(ru.get_by_label("Ключ API")).to_be_hidden()
    finally:
        ru.context.close()
    assert not errors, errors


CONV_SPACE = "page_conv"
FOUNDED = "Городская библиотека Тарусы была открыта в 1895 году на средства купца Ивана Мешкова."
CLOSED = "Читальный зал библиотеки Тарусы закрыли в 1998 году, когда обрушилась крыша старого здания."
FIRST_Q = "Когда закрыли читальный зал библиотеки Тарусы?"
FOLLOW_UP = "А в каком году её открыли?"


def library_pdf() -> bytes:
    """Three pages: the library's founding on page 1, its reading room's closing on page 2 (in
    the middle of the page, so the passage that holds it lies on page 2 alone), other text around."""
    a1, a2, a3 = (xquad_article("ru", i) for i in (1, 2, 3))
    return pdf_pages([FOUNDED + "\n" + a1[:1400], a2[:1300] + "\n" + CLOSED + "\n" + a2[1300:2600], a3[:700]])


@pytest.fixture(scope="module")
def conv_space(page: Page, svc: Service) -> Iterator[str]:
    """A space of its own holding library.pdf, open in the page; the page's space again after."""
    with svc.client() as http:
        r = ingest(http, CONV_SPACE, "library.pdf", library_pdf())
        assert r.status_code == 200, r.text
    page.get_by_label("Space", exact=True).fill(CONV_SPACE)
    page.get_by_role("button", name="Open", exact=True).click()
    expect(doc_item(page, "library.pdf")).to_be_visible()
    yield CONV_SPACE
    page.get_by_label("Space", exact=True).fill(SPACE)
    page.get_by_role("button", name="Open", exact=True).click()


def ask_and_wait(page: Page, q: str) -> None:
    ask = page.get_by_role("region", name="Ask your documents")
    ask.get_by_label("Question").fill(q)
    ask.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#answer-done")).to_contain_text(re.compile(r"Answered in [\d.]+ s"), timeout=LLM_S)
    expect(page.locator("#ask-status")).to_have_text("Answered.")


def test_a_follow_up_continues_the_conversation_with_its_citations(page: Page, conv_space: str):
    ask = page.get_by_role("region", name="Ask your documents")
    expect(ask).to_contain_text("No conversations yet: your first question starts one.")
    ask_and_wait(page, FIRST_Q)
    live = page.locator("#citation-list").get_by_role("listitem")
    closed = live.filter(has_text="1998")
    expect(closed.first).to_contain_text("library.pdf")
    expect(closed.first).to_contain_text("p. 2")
    convs = ask.get_by_role("list", name="Conversations")
    expect(convs.get_by_role("listitem")).to_have_count(1)
    expect(convs).to_contain_text(FIRST_Q)  # its title is its first question

    ask_and_wait(page, FOLLOW_UP)  # "её": the library, from the history; its answer is the turn below
    thread = ask.get_by_role("list", name="Conversation", exact=True)
    expect(thread.locator(":scope > li")).to_have_count(1)  # the first turn, answered
    expect(thread).to_contain_text(FIRST_Q)
    expect(thread.get_by_role("list", name="Quoted from the documents")).to_contain_text("1998")
    expect(page.locator("#answer-question")).to_have_text(FOLLOW_UP)
    expect(live.first).to_contain_text("library.pdf")  # the follow-up's answer is quoted too
    expect(convs.get_by_role("listitem")).to_have_count(1)  # the same conversation, continued
    shot(page, "conversation.png")


def test_a_conversation_is_reopened_from_the_list_after_a_reload(page: Page, conv_space: str):
    page.reload()
    expect(page.get_by_label("Space", exact=True)).to_have_value(conv_space)
    ask = page.get_by_role("region", name="Ask your documents")
    ask.get_by_role("button", name=f"Open the conversation “{FIRST_Q}”").click()
    thread = ask.get_by_role("list", name="Conversation", exact=True)
    turns = thread.locator(":scope > li")
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_contain_text(FIRST_Q)
    expect(turns.nth(1)).to_contain_text(FOLLOW_UP)
    expect(turns.nth(0).get_by_role("list", name="Quoted from the documents")).to_contain_text("1998")
    expect(turns.nth(1).get_by_role("list", name="Quoted from the documents")).to_contain_text("library.pdf")
    expect(turns.nth(1)).to_contain_text(CYRILLIC)  # the answer
    expect(thread).to_be_focused()


def test_a_citation_opens_the_quote_highlighted_beside_its_pdf_page(page: Page, conv_space: str):
    thread = page.get_by_role("list", name="Conversation", exact=True)
    cited = thread.get_by_role("button", name="Show the quote in library.pdf, p. 2").first
    cited.focus()
    page.keyboard.press("Enter")  # from the keyboard
    passage = page.get_by_role("dialog", name="library.pdf, p. 2")
    expect(passage).to_be_visible()
    expect(passage).to_contain_text("The quoted sentence is highlighted in the document’s text.")
    mark = passage.locator("mark")
    expect(mark).to_contain_text("1998")
    assert len(mark.text_content()) < 300, "the quoted sentence is marked, not its whole passage"
    expect(mark).to_be_in_viewport()
    image = passage.get_by_role("img", name="Page 2 of library.pdf")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.getElementById('passage-img').naturalWidth > 0")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [935, 1210]
    shown = base64.b64decode(image.evaluate("img => img.src").split(",", 1)[1])
    assert marked_box(shown) is not None, "the quote is marked on the page beside it"
    expect(passage).to_contain_text("The page as it is in the document: p. 2")
    shot(page, "quote.png", full_page=False)
    page.keyboard.press("Escape")
    expect(passage).to_be_hidden()


def test_deleting_a_conversation_removes_it(page: Page, svc: Service, conv_space: str):
    ask = page.get_by_role("region", name="Ask your documents")
    ask.get_by_role("button", name=f"Delete the conversation “{FIRST_Q}”").click()
    confirm = page.get_by_role("dialog", name="Delete the conversation?")
    expect(confirm).to_contain_text(f"“{FIRST_Q}” will be removed with all its questions and answers.")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(ask.get_by_role("list", name="Conversations").get_by_role("listitem")).to_have_count(1)
    listed = httpx.get(f"{svc.url}/conversations", params={"space_id": conv_space}, timeout=30).json()
    assert len(listed["conversations"]) == 1, "cancelled: nothing is deleted"
    ask.get_by_role("button", name=f"Delete the conversation “{FIRST_Q}”").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(ask).to_contain_text(f"The conversation “{FIRST_Q}” was deleted.")
    expect(ask.get_by_role("list", name="Conversations").get_by_role("listitem")).to_have_count(0)
    expect(page.get_by_role("list", name="Conversation", exact=True)).to_be_hidden()
    listed = httpx.get(f"{svc.url}/conversations", params={"space_id": conv_space}, timeout=30).json()
    assert listed["conversations"] == []


def test_tags_are_set_shown_as_chips_and_a_question_reads_only_the_documents_chosen(page: Page, svc: Service):
    space = "page_tags"
    with svc.client() as http:
        for name, text in (("roads.txt", "Дорогу до Тарусы отремонтируют летом."), ("park.txt", "Парк откроют в мае.")):
            assert ingest(http, space, name, text.encode()).status_code == 200
    page.get_by_label("Space", exact=True).fill(space)
    page.get_by_role("button", name="Open", exact=True).click()
    try:
        roads, park = doc_item(page, "roads.txt"), doc_item(page, "park.txt")
        expect(park).to_be_visible()
        roads.get_by_role("button", name="Tags", exact=True).click()
        roads.get_by_label("Tags of roads.txt, separated by commas").fill("дороги, 2026")
        roads.get_by_role("button", name="Save tags").click()
        chip = roads.get_by_role("button", name="Show documents tagged “дороги”")
        expect(chip).to_be_visible()
        docs = httpx.get(f"{svc.url}/documents", params={"space_id": space, "tag": "дороги"}, timeout=30).json()
        assert [d["filename"] for d in docs["documents"]] == ["roads.txt"]
        chip.click()
        expect(park).to_be_hidden()  # the chip shows that tag's documents alone
        ask = page.get_by_role("region", name="Ask your documents")
        expect(ask).to_contain_text("Questions read only documents tagged “дороги”.")
        page.get_by_role("button", name="Whole space").first.click()
        expect(park).to_be_visible()
        park.get_by_label("Ask about it: park.txt").check()
        expect(ask).to_contain_text("Questions read only the 1 document you chose.")
        ask.get_by_label("Question").fill("Когда откроют парк?")
        with page.expect_request(lambda r: "messages-stream" in r.url) as sent:
            ask.get_by_role("button", name="Ask", exact=True).click()
        body = sent.value.post_data_json
        assert body["doc_ids"] == [docs_id(svc, space, "park.txt")] and "tags" not in body, body
        # the embedded model answers with a quote at once: the answer ends before a Stop could be pressed
        expect(ask).to_contain_text("Answered.", timeout=LLM_S)
    finally:
        page.get_by_label("Space", exact=True).fill(SPACE)
        page.get_by_role("button", name="Open", exact=True).click()


def docs_id(svc: Service, space: str, filename: str) -> str:
    docs = httpx.get(f"{svc.url}/documents", params={"space_id": space}, timeout=30).json()["documents"]
    return next(d["doc_id"] for d in docs if d["filename"] == filename)


def test_many_conversations_and_a_long_one_are_read_a_page_at_a_time(page: Page, svc: Service):
    """52 conversations, the newest with 30 turns (written through the store into the service's
    database: no LLM is needed to read them): the page lists 50 and fetches the rest on demand,
    opens the long one at its newest 25 turns and fetches the earlier ones above them."""
    space = "page_paging"
    with svc.client() as http:
        for _ in range(51):
            assert http.post("/conversations", json={"space_id": space}).status_code == 201
        long_id = http.post("/conversations", json={"space_id": space}).json()["conversation_id"]
    db = Database.for_data_dir(None, svc.data_dir)
    try:
        store = ConversationStore(db)
        for i in range(30):
            turn = Turn(new_message("user", f"Question {i}?"), new_message("assistant", f"Answer {i}."))
            store.add_turn(space, long_id, turn)
    finally:
        db.close()
    page.get_by_label("Space", exact=True).fill(space)
    page.get_by_role("button", name="Open", exact=True).click()
    try:
        ask = page.get_by_role("region", name="Ask your documents")
        convs = ask.get_by_role("list", name="Conversations").get_by_role("listitem")
        expect(convs).to_have_count(50)
        more = ask.get_by_role("button", name="More conversations")
        more.click()
        expect(convs).to_have_count(52)
        expect(more).to_be_hidden()

        ask.get_by_role("button", name="Open the conversation “Question 0?”").click()
        turns = ask.get_by_role("list", name="Conversation", exact=True).locator(":scope > li")
        expect(turns).to_have_count(25)
        expect(turns.nth(0)).to_contain_text("Question 5?")
        expect(turns.nth(24)).to_contain_text("Answer 29.")
        earlier = ask.get_by_role("button", name="Earlier messages")
        earlier.click()
        expect(turns).to_have_count(30)
        expect(turns.nth(0)).to_contain_text("Question 0?")
        expect(turns.nth(0)).to_contain_text("Answer 0.")
        expect(turns.nth(5)).to_contain_text("Question 5?")
        expect(earlier).to_be_hidden()
    finally:
        page.get_by_label("Space", exact=True).fill(SPACE)
        page.get_by_role("button", name="Open", exact=True).click()


def test_a_key_is_asked_for_after_the_first_401(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]
):
    keyed = start_in_process(tmp_path_factory.mktemp("keyed"), API_KEYS="k:*,team-key:team", **llama_env)
    errors: list[str] = []
    try:
        with keyed.client(**{"X-API-Key": "k"}) as http:
            r = http.post(
                "/ingest",
                files={"file": ("angara.md", "Ангара вытекает из Байкала.".encode())},
                data={"space_id": "keyed"},
            )
            assert r.status_code == 200, r.text
        page = open_page(browser, keyed.url, errors)
        alert = page.get_by_role("alert").filter(has_text="needs an API key")
        expect(alert).to_have_text("This service needs an API key. Enter it to continue.")
        expect(page.get_by_label("API key")).to_be_focused()
        shot(page, "key-needed.png", full_page=False)

        page.get_by_label("API key").fill("wrong")
        page.get_by_role("button", name="Save key").click()
        expect(page.get_by_role("alert").filter(has_text="not accepted")).to_be_visible()

        page.get_by_label("API key").fill("k")
        page.get_by_role("button", name="Save key").click()
        expect(page.get_by_text("No documents in this space yet.")).to_be_visible()
        page.get_by_label("Space", exact=True).fill("keyed")
        page.get_by_role("button", name="Open", exact=True).click()
        expect(doc_item(page, "angara.md")).to_contain_text("Language: Russian (ru)")

        page.reload()  # the key and the space are remembered
        expect(doc_item(page, "angara.md")).to_be_visible()

        # a key limited to other spaces is told so
        page.get_by_label("API key").fill("team-key")
        page.get_by_role("button", name="Save key").click()
        expect(page.get_by_role("alert").filter(has_text="cannot reach")).to_have_text(
            "This API key cannot reach the space “keyed”. Choose another space or another key."
        )
        expect(page.get_by_role("heading", name="angara.md")).to_have_count(0)
        page.get_by_label("Space", exact=True).fill("team")
        page.get_by_role("button", name="Open", exact=True).click()
        expect(page.get_by_text("No documents in this space yet.")).to_be_visible()
        page.context.close()
    finally:
        keyed.stop()
    assert not errors, errors
