"""`GET /documents/{doc_id}/pages/{n}`: a page of a stored PDF as a PNG, rendered by the service,
under the same key and space rules as the document's text."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import pytest

from tests.conftest import Service, ingest, pdf_pages, start_service

ALL, TEAM = "pages-all-key-0001", "pages-team-key-0002"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGES = [
    "Первая страница. Здесь говорится о погоде в Тарусе.",
    "Вторая страница. Читальный зал библиотеки закрыли в 1998 году.",
    "Третья страница. Здесь ничего важного нет.",
]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("pages"), API_KEYS=f"{ALL}:*,{TEAM}:team")
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
