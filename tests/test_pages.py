"""`GET /documents/{doc_id}/pages/{n}`: a page of a stored PDF as a PNG, rendered by the service,
under the same key and space rules as the document's text — and bounded, so one key's costly pages
hold up nobody else."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from docassist.bench.pdfs import bomb_pdf, slow_vector_pdf
from tests.conftest import Service, ingest, marked_box, pdf_pages
from tests.inprocess import start_in_process

ALL, TEAM = "pages-all-key-0001", "pages-team-key-0002"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGES = [
    "Первая страница. Здесь говорится о погоде в Тарусе.",
    "Вторая страница. Читальный зал библиотеки закрыли в 1998 году.",
    "Третья страница. Здесь ничего важного нет.",
]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, llama_env: dict[str, str]) -> Iterator[Service]:
    svc = start_in_process(
        tmp_path_factory.mktemp("pages"),
        API_KEYS=f"{ALL}:*,{TEAM}:team",
        RENDERS_PER_KEY="2",
        PAGE_RENDER_TIMEOUT_S="5",  # the defaults, which the tests below count on
        **llama_env,
    )
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def stored(keyed: Service) -> dict[str, str]:
    """A three-page PDF in space `archive` and a text file in `team`: their doc_ids."""
    with keyed.client(**{"X-API-Key": ALL}) as http:
        pdf = ingest(http, "archive", "library.pdf", pdf_pages(PAGES))
        txt = ingest(http, "team", "notes.txt", "Заметки команды.".encode())
        team_pdf = ingest(http, "team", "library.pdf", pdf_pages(PAGES))
    for r in (pdf, txt, team_pdf):
        assert r.status_code == 200, r.text
    return {"pdf": pdf.json()["doc_id"], "txt": txt.json()["doc_id"], "team_pdf": team_pdf.json()["doc_id"]}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_page_of_a_pdf_is_a_png_at_110_dpi(keyed: Service, stored: dict[str, str]):
    with keyed.client(**{"X-API-Key": ALL}) as http:
        r = http.get(f"/documents/{stored['pdf']}/pages/2", params={"space_id": "archive"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert png_size(r.content) == (935, 1210), "US Letter (612 × 792 pt) at 110 dpi"
    from PIL import Image

    image = Image.open(io.BytesIO(r.content))
    assert image.mode == "RGB"
    assert image.convert("L").getextrema()[0] < 128, "the page's text is drawn, not a blank page"


def test_a_citation_names_the_page_its_quote_is_on_not_every_page_of_its_chunk(keyed: Service, stored: dict[str, str]):
    with keyed.client(**{"X-API-Key": ALL}) as http:
        body = http.post("/ask", json={"q": "Когда закрыли читальный зал библиотеки?", "space_id": "archive"}).json()
    assert body["grounded"] is True, body
    [source] = [s for s in body["sources"] if s["doc_id"] == stored["pdf"]]
    assert source["location"] == {"page": 1, "page_end": 3}, "the three short pages are one chunk"
    first = body["citations"][0]
    assert "1998" in first["quote"] and first["location"] == {"page": 2}, first


def test_a_quote_is_marked_on_its_page_and_on_no_other(keyed: Service, stored: dict[str, str]):
    sentence = "Читальный зал библиотеки закрыли в 1998 году."
    with keyed.client(**{"X-API-Key": ALL}) as http:
        text = http.get(f"/documents/{stored['pdf']}/text", params={"space_id": "archive"}).text
        start = text.index(sentence)
        span = f"{start}-{start + len(sentence)}"
        plain = http.get(f"/documents/{stored['pdf']}/pages/2", params={"space_id": "archive"})
        marked = http.get(f"/documents/{stored['pdf']}/pages/2", params={"space_id": "archive", "highlight": span})
        elsewhere = http.get(f"/documents/{stored['pdf']}/pages/1", params={"space_id": "archive", "highlight": span})
    assert marked.status_code == 200, marked.text
    assert marked.headers["highlight-lines"] == "1" and "highlight-lines" not in plain.headers
    assert marked_box(plain.content) is None
    box = marked_box(marked.content)
    assert box is not None, "the quote is marked"
    left, top, right, bottom = box
    # the page's first line sits 72 pt (110 px) from the top; "Вторая страница. " comes before the quote
    assert 85 <= top <= 115 and 110 <= bottom <= 140, box
    assert 200 <= left <= 300 and right > left + 300, box
    assert elsewhere.status_code == 200 and elsewhere.headers["highlight-lines"] == "0"
    assert marked_box(elsewhere.content) is None, "page 1 does not hold the quote: nothing is marked"
    assert png_size(marked.content) == png_size(plain.content)


def test_a_bad_highlight_is_422_and_says_what_it_wants(keyed: Service, stored: dict[str, str]):
    with keyed.client(**{"X-API-Key": ALL}) as http:
        url = f"/documents/{stored['pdf']}/pages/2"
        for bad in ("12", "9-3", "a-b", "0-999999", "5000000-5000010"):
            r = http.get(url, params={"space_id": "archive", "highlight": bad})
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["code"] == "invalid_input" and "highlight" in r.json()["error"]["message"], r.text
        on_text = http.get(f"/documents/{stored['txt']}/pages/1", params={"space_id": "team", "highlight": "0-5"})
    assert on_text.status_code == 415, on_text.text


def test_a_page_the_pdf_does_not_have_is_404_in_the_envelope(keyed: Service, stored: dict[str, str]):
    with keyed.client(**{"X-API-Key": ALL}) as http:
        r = http.get(f"/documents/{stored['pdf']}/pages/99", params={"space_id": "archive"})
        assert r.status_code == 404
        err = r.json()["error"]
        assert err["code"] == "not_found" and "the document has 3 pages" in err["message"]
        assert err["details"] == {"pages": 3}
        assert http.get(f"/documents/{stored['pdf']}/pages/0", params={"space_id": "archive"}).status_code == 422


def test_a_document_that_is_not_a_pdf_is_refused_clearly(keyed: Service, stored: dict[str, str]):
    with keyed.client(**{"X-API-Key": ALL}) as http:
        r = http.get(f"/documents/{stored['txt']}/pages/1", params={"space_id": "team"})
    assert r.status_code == 415
    err = r.json()["error"]
    assert err["code"] == "unsupported_media_type"
    assert "PDF documents only" in err["message"] and "notes.txt" in err["message"]


def test_pages_follow_the_key_and_space_rules_of_documents(keyed: Service, stored: dict[str, str]):
    path = f"/documents/{stored['pdf']}/pages/1"
    with keyed.client() as anonymous:
        assert anonymous.get(path, params={"space_id": "archive"}).status_code == 401
    with keyed.client(**{"X-API-Key": TEAM}) as team:
        forbidden = team.get(path, params={"space_id": "archive"})
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
        # asked for in the key's own space, a document of another space does not exist
        hidden = team.get(path, params={"space_id": "team"})
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        own = team.get(f"/documents/{stored['team_pdf']}/pages/1", params={"space_id": "team"})
        assert own.status_code == 200 and own.content[:8] == PNG_SIGNATURE


@pytest.fixture(scope="module")
def costly(keyed: Service) -> dict[str, str]:
    """In space `team`: a page of three images declaring 131,000² pixels each (7 KB on disk), and a
    page of 40,000 full-page fills (2 KB on disk, about 25 s to draw here); their doc_ids."""
    with keyed.client(**{"X-API-Key": TEAM}) as team:
        bomb = ingest(team, "team", "bomb.pdf", bomb_pdf("Three images of billions of pixels.", images=3))
        slow = ingest(team, "team", "slow.pdf", slow_vector_pdf("A page that takes long to draw."))
    for r in (bomb, slow):
        assert r.status_code == 200, r.text
    return {"bomb": bomb.json()["doc_id"], "slow": slow.json()["doc_id"]}


def get_page(svc: Service, key: str, doc_id: str, space: str, page: int = 1) -> httpx.Response:
    with svc.client(**{"X-API-Key": key}) as http:
        return http.get(f"/documents/{doc_id}/pages/{page}", params={"space_id": space})


def renders_admitted(svc: Service) -> int:
    """Page renders running or waiting in the service, from its own metrics."""
    with svc.client(**{"X-API-Key": ALL}) as http:
        text = http.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("docassist_lane_calls{") and 'lane="pages"' in line]
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in lines)


def slow_renders(svc: Service, pool: ThreadPoolExecutor, doc_id: str, n: int) -> list[Future[httpx.Response]]:
    """`n` requests by TEAM for the slow page, returned once the service has admitted them all."""
    renders = [pool.submit(get_page, svc, TEAM, doc_id, "team") for _ in range(n)]
    deadline = time.monotonic() + 60
    while renders_admitted(svc) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert renders_admitted(svc) == n, "the renders never got in"
    return renders


def assert_page_too_costly(r: httpx.Response, limit: str) -> None:
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "page_too_costly" and err["details"]["limit"] == limit and limit in err["message"], err


@pytest.mark.slow
def test_one_keys_costly_renders_never_hold_up_another_spaces_upload(
    keyed: Service, stored: dict[str, str], costly: dict[str, str]
):
    with ThreadPoolExecutor(2) as pool:
        renders = slow_renders(keyed, pool, costly["slow"], 2)
        with keyed.client(**{"X-API-Key": ALL}) as other:
            upload = ingest(other, "calm", "note.txt", b"One line from a space of its own.")
        rendering = [not r.done() for r in renders]
        answers = [r.result() for r in renders]
    assert upload.status_code == 200, upload.text
    assert rendering == [True, True], "the upload was answered only once a render had ended"
    for r in answers:  # each stopped at PAGE_RENDER_TIMEOUT_S, its worker replaced
        assert_page_too_costly(r, "PAGE_RENDER_TIMEOUT_S")
    after = get_page(keyed, TEAM, stored["team_pdf"], "team")
    assert after.status_code == 200 and after.content[:8] == PNG_SIGNATURE, "the new render worker draws pages"


def test_a_page_whose_images_declare_billions_of_pixels_is_refused_before_any_is_drawn(
    keyed: Service, costly: dict[str, str]
):
    r = get_page(keyed, TEAM, costly["bomb"], "team")
    assert_page_too_costly(r, "MAX_IMAGE_PIXELS")
    assert r.json()["error"]["details"]["pixels"] == 3 * 131_000**2


@pytest.mark.slow
def test_a_key_past_its_renders_in_flight_is_refused_with_retry_after(
    keyed: Service, stored: dict[str, str], costly: dict[str, str]
):
    with ThreadPoolExecutor(3) as pool:
        renders = slow_renders(keyed, pool, costly["slow"], 2)  # RENDERS_PER_KEY=2
        third = get_page(keyed, TEAM, stored["team_pdf"], "team")
        another_key = pool.submit(get_page, keyed, ALL, stored["pdf"], "archive")
        answers = [r.result() for r in renders]
    assert third.status_code == 429, third.text
    err = third.json()["error"]
    assert err["code"] == "too_many_requests" and "RENDERS_PER_KEY" in err["message"], err
    assert int(third.headers["Retry-After"]) > 0
    assert another_key.result().status_code == 200, "another key's page waits its turn, it is not refused"
    for r in answers:
        assert_page_too_costly(r, "PAGE_RENDER_TIMEOUT_S")


def test_a_damaged_image_is_refused_naming_the_file_not_an_object(keyed: Service):
    damaged = b"\x89PNX\r\n\x1a\n" + bytes(range(256)) * 8  # a PNG whose signature was overwritten
    with keyed.client(**{"X-API-Key": TEAM}) as team:
        r = ingest(team, "team", "photo.png", damaged)
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert "'photo.png' could not be read" in message, message
    assert "object at" not in message and "BytesIO" not in message, message
