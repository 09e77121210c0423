"""Listing, inspecting and deleting documents; spaces never leak."""

from __future__ import annotations

import sqlite3

from tests.conftest import FIXTURES, Service, ingest


def test_get_document_shows_metadata(http, space):
    doc = ingest(http, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes()).json()
    got = http.get(f"/documents/{doc['doc_id']}", params={"space_id": space})
    assert got.status_code == 200
    body = got.json()
    assert body["filename"] == "baikal_ru.pdf" and body["language"] == "ru"
    assert body["chunks"] == doc["chunks"] and body["summary_status"] == "none"


def test_unknown_doc_id_is_404(http, space):
    for method in ("GET", "DELETE"):
        r = http.request(method, "/documents/0123456789abcdef", params={"space_id": space})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


def test_document_of_another_space_is_404_and_never_searchable(http, space):
    secret = ingest(http, space + "_a", "secret.txt", "Пароль от сейфа: бегемот-42.".encode()).json()
    other = space + "_b"
    ingest(http, other, "public.txt", "Сейф стоит в кабинете директора.".encode())
    assert http.get(f"/documents/{secret['doc_id']}", params={"space_id": other}).status_code == 404
    assert http.delete(f"/documents/{secret['doc_id']}", params={"space_id": other}).status_code == 404
    hits = http.post("/search", json={"q": "пароль от сейфа", "space_id": other, "top_k": 100}).json()["sources"]
    assert hits and all(h["doc_id"] != secret["doc_id"] for h in hits)
    listed = [d["doc_id"] for d in http.get("/documents", params={"space_id": other}).json()["documents"]]
    assert secret["doc_id"] not in listed and len(listed) == 1
    still = http.get(f"/documents/{secret['doc_id']}", params={"space_id": space + "_a"})
    assert still.status_code == 200, "a refused cross-space delete must not remove the document"


def stored_content(service: Service, space: str, doc_id: str) -> tuple[str, bytes] | None:
    """The text and original bytes the service keeps for a document, read from its database."""
    with sqlite3.connect(service.data_dir / "docassist.sqlite3") as conn:
        row = conn.execute(
            "SELECT text, original FROM document_contents WHERE space_id=? AND doc_id=?", (space, doc_id)
        ).fetchone()
    return (row[0], bytes(row[1])) if row else None


def test_delete_removes_vectors_content_and_metadata(http, space, service: Service):
    doc = ingest(http, space, "petr.txt", "Пётр Первый основал Санкт-Петербург.".encode()).json()
    keep = ingest(http, space, "keep.txt", "Екатерина Вторая правила Россией.".encode()).json()
    text, original = stored_content(service, space, doc["doc_id"])
    assert original == "Пётр Первый основал Санкт-Петербург.".encode() and text.startswith("Пётр Первый")
    r = http.delete(f"/documents/{doc['doc_id']}", params={"space_id": space})
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert stored_content(service, space, doc["doc_id"]) is None
    assert http.get(f"/documents/{doc['doc_id']}", params={"space_id": space}).status_code == 404
    hits = http.post("/search", json={"q": "Пётр Первый", "space_id": space, "top_k": 10}).json()["sources"]
    assert [h["doc_id"] for h in hits] == [keep["doc_id"]]
    again = ingest(http, space, "petr.txt", "Пётр Первый основал Санкт-Петербург.".encode()).json()
    assert again["duplicate"] is False, "a deleted document is ingested anew"


def test_bad_space_id_is_422_everywhere(http):
    for bad in ("", "a b", "../etc", "x" * 65, "пробел"):
        assert http.get("/documents", params={"space_id": bad}).status_code == 422, bad
        assert http.post("/search", json={"q": "x", "space_id": bad}).status_code == 422, bad
        r = http.post("/ingest", files={"file": ("a.txt", b"hello there")}, data={"space_id": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_input"
