"""`POST /search`: hybrid retrieval without an LLM, in Russian and English."""

from __future__ import annotations

import json

from tests.conftest import EVALDATA, FIXTURES, ingest


def test_search_finds_the_right_document_in_russian_and_english(http, space):
    ru = ingest(http, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes()).json()
    en = ingest(http, space, "ph.docx", (FIXTURES / "photosynthesis_en.docx").read_bytes()).json()
    r = http.post("/search", json={"q": "Какая река вытекает из Байкала?", "space_id": space, "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["sources"][0]["doc_id"] == ru["doc_id"]
    assert "Ангара" in " ".join(s["text"] for s in body["sources"] if s["doc_id"] == ru["doc_id"])
    assert set(body["timing"]) >= {"embed_ms", "search_ms", "total_ms"}
    top = http.post(
        "/search", json={"q": "Where do plants make sugar from carbon dioxide?", "space_id": space, "top_k": 1}
    ).json()["sources"][0]
    assert top["doc_id"] == en["doc_id"] and top["filename"] == "ph.docx"


def test_russian_question_finds_english_document(http, space):
    en = ingest(http, space, "ph.docx", (FIXTURES / "photosynthesis_en.docx").read_bytes()).json()
    ingest(http, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes())
    top = http.post(
        "/search", json={"q": "Как растения превращают свет в химическую энергию?", "space_id": space, "top_k": 1}
    ).json()["sources"][0]
    assert top["doc_id"] == en["doc_id"]


def test_top_k_is_respected_and_validated(http, space):
    for i in range(4):
        ingest(http, space, f"n{i}.txt", f"Заметка номер {i} о погоде в Казани.".encode())
    assert len(http.post("/search", json={"q": "погода", "space_id": space, "top_k": 2}).json()["sources"]) == 2
    for bad in (0, 101, -1, "many"):
        r = http.post("/search", json={"q": "погода", "space_id": space, "top_k": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "invalid_input"


def test_empty_question_and_malformed_json_are_422(http, space):
    for q in ("", "   "):
        r = http.post("/search", json={"q": q, "space_id": space})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = http.post("/search", content=b'{"q": "x", ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["error"]["message"]


def test_search_in_an_empty_space_returns_nothing(http, space):
    r = http.post("/search", json={"q": "что угодно", "space_id": space})
    assert r.status_code == 200 and r.json()["sources"] == []


def test_xquad_sample_russian_and_cross_lingual_retrieval(http, space):
    """A slice of XQuAD dev (the full evaluation is evals/retrieval.py): 8 Russian and the
    8 parallel English paragraphs; Russian questions must find their paragraph in both."""
    ru = [json.loads(line) for line in (EVALDATA / "xquad_ru" / "dev.jsonl").open(encoding="utf-8")]
    en = {
        json.loads(line)["id"].rsplit("-", 1)[0]: json.loads(line)
        for line in (EVALDATA / "xquad_en" / "dev.jsonl").open(encoding="utf-8")
    }
    contexts = list(dict.fromkeys(r["context"] for r in ru))[:8]
    questions = [r for r in ru if r["context"] in contexts]
    doc_ru = {c: ingest(http, space, f"ru{i}.txt", c.encode()).json()["doc_id"] for i, c in enumerate(contexts)}
    en_space = space + "_en"
    en_ctx = {en[q["id"].rsplit("-", 1)[0]]["context"] for q in questions}
    doc_en = {c: ingest(http, en_space, f"en{i}.txt", c.encode()).json()["doc_id"] for i, c in enumerate(en_ctx)}
    hit_ru = hit_cross = 0
    for q in questions:
        got = [
            s["doc_id"]
            for s in http.post("/search", json={"q": q["question"], "space_id": space, "top_k": 1}).json()["sources"]
        ]
        hit_ru += doc_ru[q["context"]] in got
        gold_en = doc_en[en[q["id"].rsplit("-", 1)[0]]["context"]]
        got = [
            s["doc_id"]
            for s in http.post("/search", json={"q": q["question"], "space_id": en_space, "top_k": 5}).json()["sources"]
        ]
        hit_cross += gold_en in got
    assert hit_ru / len(questions) >= 0.85, (hit_ru, len(questions))
    assert hit_cross / len(questions) >= 0.85, (hit_cross, len(questions))
