"""Ingestion over real HTTP into real Qdrant local mode with real embeddings."""

from __future__ import annotations

import io

import docx
from pypdf import PdfWriter

from tests.conftest import FIXTURES, Service, ingest


def test_russian_pdf_and_english_docx_come_back_with_their_languages(http, space):
    ru = ingest(http, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes())
    en = ingest(http, space, "photosynthesis_en.docx", (FIXTURES / "photosynthesis_en.docx").read_bytes())
    assert ru.status_code == 200, ru.text
    assert en.status_code == 200, en.text
    assert ru.json()["language"] == "ru"
    assert en.json()["language"] == "en"
    assert ru.json()["chunks"] >= 1 and ru.json()["tokens"] > 50
    listed = http.get("/documents", params={"space_id": space}).json()["documents"]
    assert {d["filename"] for d in listed} == {"baikal_ru.pdf", "photosynthesis_en.docx"}


def test_reingest_same_bytes_returns_duplicate_and_embeds_nothing(http, space, service: Service):
    data = (FIXTURES / "baikal_ru.pdf").read_bytes()
    first = ingest(http, space, "baikal_ru.pdf", data).json()
    log_before = service.log().count("[INGEST] Indexed")
    again = ingest(http, space, "copy-of-baikal.pdf", data).json()
    assert again["duplicate"] is True and first["duplicate"] is False
    assert again["doc_id"] == first["doc_id"]
    assert service.log().count("[INGEST] Indexed") == log_before
    assert len(http.get("/documents", params={"space_id": space}).json()["documents"]) == 1
    hits = http.post("/search", json={"q": "глубина Байкала", "space_id": space, "top_k": 20}).json()["sources"]
    assert len(hits) == first["chunks"], "the duplicate must not add vectors"


def test_same_bytes_in_another_space_is_another_document(http, space):
    data = "Москва — столица России.".encode()
    a = ingest(http, space, "a.txt", data).json()
    b = ingest(http, space + "_b", "a.txt", data).json()
    assert a["doc_id"] != b["doc_id"] and b["duplicate"] is False


def test_windows_1251_text_is_decoded_to_readable_russian(http, space):
    text = "Пётр Первый основал Санкт-Петербург в 1703 году на берегах Невы."
    r = ingest(http, space, "petr.txt", text.encode("cp1251"))
    assert r.status_code == 200, r.text
    assert r.json()["language"] == "ru"
    hit = http.post("/search", json={"q": "Кто основал Санкт-Петербург?", "space_id": space}).json()["sources"][0]
    assert hit["text"] == text


def test_utf16_and_markdown_and_html_are_extracted(http, space):
    md = ingest(http, space, "notes.md", "# Заметки\n\nКошки любят спать на солнце.".encode("utf-16"))
    html = ingest(
        http,
        space,
        "page.html",
        b"<html><head><script>var secret='x';</script><style>p{}</style></head>"
        b"<body><h1>Garden</h1><p>Tomatoes need full sun and regular watering.</p></body></html>",
    )
    assert md.status_code == 200 and md.json()["language"] == "ru"
    assert html.status_code == 200 and html.json()["language"] == "en"
    hit = http.post("/search", json={"q": "tomatoes watering", "space_id": space, "top_k": 1}).json()["sources"][0]
    assert "Tomatoes need full sun" in hit["text"] and "secret" not in hit["text"]


def test_json_bodies_are_utf8_with_readable_russian(http, space):
    ingest(http, space, "r.txt", "Ёжик в тумане — мультфильм Юрия Норштейна.".encode())
    raw = http.post("/search", json={"q": "ёжик", "space_id": space}).content.decode("utf-8")
    assert "Ёжик в тумане" in raw and "\\u04" not in raw


def test_unsupported_file_type_is_415(http, space):
    r = ingest(http, space, "letter.rtf", b"{\\rtf1 not supported}")
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert ".pptx" in r.json()["error"]["message"] and ".epub" in r.json()["error"]["message"]


def test_empty_file_is_422_no_text(http, space):
    for data in (b"", b"   \n\n  "):
        r = ingest(http, space, "empty.txt", data)
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "no_text"


def test_pdf_without_text_layer_is_422_no_text(http, space):
    writer, buf = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(buf)
    r = ingest(http, space, "scan.pdf", buf.getvalue())
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "no_text"
    assert "OCR" in r.json()["error"]["message"]


def test_corrupt_pdf_and_docx_are_422_unreadable(http, space):
    pdf = (FIXTURES / "baikal_ru.pdf").read_bytes()
    for name, data in (
        ("broken.pdf", pdf[: len(pdf) // 3]),
        ("broken.pdf", b"%PDF-1.7 garbage"),
        ("broken.docx", b"PK\x03\x04 definitely not a zip"),
        ("broken.docx", b"plain text"),
    ):
        r = ingest(http, space, name, data)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["code"] == "unreadable_document", (name, r.text)
    assert http.get("/documents", params={"space_id": space}).json()["documents"] == []


def test_upload_over_max_upload_mb_is_413(http, space):
    r = ingest(http, space, "big.txt", b"word " * (1024 * 1024 // 5 + 100))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"
    assert http.get("/documents", params={"space_id": space}).json()["documents"] == []


def test_docx_tables_are_indexed(http, space):
    document, buf = docx.Document(), io.BytesIO()
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Capital of Mongolia", "Ulaanbaatar"
    document.save(buf)
    assert ingest(http, space, "t.docx", buf.getvalue()).status_code == 200
    hit = http.post("/search", json={"q": "Ulaanbaatar", "space_id": space}).json()["sources"][0]
    assert "Ulaanbaatar" in hit["text"]
