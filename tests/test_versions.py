"""New versions of a document under one id (`PUT /documents/{id}`, `/ingest` with `replace`):
only the chunks whose text changed are embedded again, the old chunks leave the index, the old
text stays readable, and bad versions change nothing. Over real HTTP on the embedded default
(real extraction, embeddings, Qdrant Edge, SQLite)."""

from __future__ import annotations

import hashlib

from tests.conftest import ingest, xquad_article

OLD = "The old harbour master kept the keys of the lighthouse until 1962."
NEW = "The lighthouse keeper of Vardø island is named Ingrid Solberg."


def report(last: str) -> str:
    """Three articles of English prose (several chunks), then a closing paragraph."""
    return "\n\n".join([*(xquad_article("en", i) for i in range(3)), last])


def put(http, space: str, doc_id: str, name: str, data: bytes, **form: str):
    return http.put(
        f"/documents/{doc_id}", files={"file": (name, data)}, data={"space_id": space, "wait": "true", **form}
    )


def in_scope(http, space: str, doc_id: str, q: str) -> list[dict]:
    body = {"q": q, "space_id": space, "top_k": 100, "doc_ids": [doc_id]}
    return http.post("/search", json=body).json()["sources"]


def test_a_new_version_keeps_its_id_embeds_only_what_changed_and_keeps_the_old_text(http, space):
    v1, v2 = report(OLD).encode(), report(NEW).encode()
    first = ingest(http, space, "report.txt", v1).json()
    doc = first["doc_id"]
    r = put(http, space, doc, "report.txt", v2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["doc_id"] == doc and body["version"] == 2 and body["duplicate"] is False
    assert first["chunks"] - 2 <= body["reused_chunks"] < body["chunks"], "only the changed end is embedded again"
    chunks = in_scope(http, space, doc, "lighthouse keeper")
    assert len(chunks) == body["chunks"], "the replaced version's chunks left the index"
    text = " ".join(c["text"] for c in chunks)
    assert NEW in text and OLD not in text
    top = http.post("/search", json={"q": "Who keeps the lighthouse of Vardø?", "space_id": space}).json()
    assert top["sources"][0]["doc_id"] == doc and "Ingrid Solberg" in top["sources"][0]["text"]

    shown = http.get(f"/documents/{doc}", params={"space_id": space}).json()
    assert shown["version"] == 2
    assert [(v["n"], v["sha256"], v["size"]) for v in shown["versions"]] == [
        (1, hashlib.sha256(v1).hexdigest(), len(v1)),
        (2, hashlib.sha256(v2).hexdigest(), len(v2)),
    ]
    old_text = http.get(f"/documents/{doc}/versions/1/text", params={"space_id": space})
    assert old_text.status_code == 200 and OLD in old_text.text and NEW not in old_text.text
    now = http.get(f"/documents/{doc}/text", params={"space_id": space}).text
    assert NEW in now and now == http.get(f"/documents/{doc}/versions/2/text", params={"space_id": space}).text
    assert http.get(f"/documents/{doc}/versions/3/text", params={"space_id": space}).status_code == 404
    assert http.get(f"/documents/{doc}/versions/{10**22}/text", params={"space_id": space}).status_code == 422
    listed = http.get("/documents", params={"space_id": space}).json()
    assert listed["total"] == 1 and listed["documents"][0]["version"] == 2


def test_the_same_bytes_change_nothing_and_another_kind_is_taken_and_said(http, space):
    v1 = report(OLD).encode()
    doc = ingest(http, space, "report.txt", v1).json()["doc_id"]
    same = put(http, space, doc, "report.txt", v1).json()
    assert same["duplicate"] is True and same["version"] == 1
    markdown = ("# Report\n\n" + report(NEW)).encode()
    other = put(http, space, doc, "report.md", markdown).json()
    assert other["version"] == 2 and other["replaced_kind"] == ".txt" and other["doc_id"] == doc
    shown = http.get(f"/documents/{doc}", params={"space_id": space}).json()
    assert shown["filename"] == "report.md" and shown["ext"] == ".md"


def test_a_version_for_another_spaces_document_is_404_and_changes_nothing(http, space):
    doc = ingest(http, space, "report.txt", report(OLD).encode()).json()["doc_id"]
    r = put(http, "someone_else", doc, "report.txt", report(NEW).encode())
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert put(http, space, "no-such-document", "report.txt", b"text").status_code == 404
    shown = http.get(f"/documents/{doc}", params={"space_id": space}).json()
    assert shown["version"] == 1 and len(shown["versions"]) == 1
    assert OLD in http.get(f"/documents/{doc}/text", params={"space_id": space}).text


def test_ingest_with_replace_makes_a_new_version_of_the_same_filename(http, space):
    doc = ingest(http, space, "notes.txt", "Первая редакция заметки о погоде.".encode()).json()["doc_id"]
    again = ingest(http, space, "notes.txt", "Вторая редакция заметки о погоде.".encode(), replace="true").json()
    assert again["doc_id"] == doc and again["version"] == 2
    fresh = ingest(http, space, "other.txt", "Совсем другая заметка.".encode(), replace="true").json()
    assert fresh["doc_id"] != doc and fresh["version"] == 1, "no document of that name: a new one"
    assert "Вторая" in http.get(f"/documents/{doc}/text", params={"space_id": space}).text
    assert http.get("/documents", params={"space_id": space}).json()["total"] == 2


def test_a_conversation_answered_before_a_new_version_keeps_its_quote_and_the_version_it_came_from(http, space):
    old = "The old harbour master of Vardø kept the keys of the lighthouse until 1962. He lived by the pier."
    doc = ingest(http, space, "harbour.txt", old.encode()).json()["doc_id"]
    conv = http.post("/conversations", json={"space_id": space}).json()["conversation_id"]
    asked = {"q": "Until when did the harbour master keep the keys of the lighthouse?", "space_id": space}
    turn = http.post(f"/conversations/{conv}/messages", json=asked, timeout=300).json()
    assert turn["grounded"] is True and turn["citations"], turn
    quote = turn["citations"][0]
    assert "1962" in quote["quote"] and quote["version"] == 1, quote
    assert put(http, space, doc, "harbour.txt", NEW.encode()).json()["version"] == 2

    kept = http.get(f"/conversations/{conv}", params={"space_id": space}).json()["messages"][-1]["citations"][0]
    assert kept["quote"] == quote["quote"] and kept["version"] == 1, "the quote stays as it was answered"
    then = http.get(f"/documents/{doc}/versions/{kept['version']}/text", params={"space_id": space}).text
    assert then[kept["start"] : kept["end"]] == kept["quote"], "the version it names still holds it where it said"
    assert kept["quote"] not in http.get(f"/documents/{doc}/text", params={"space_id": space}).text
