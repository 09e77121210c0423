"""Questions scoped to chosen documents, tags, languages and upload times; tags and titles set by
`PATCH /documents/{id}`; the document list filtered, searched, sorted and paged. On the embedded
default over real HTTP (Qdrant Edge on disk, the real embedding model): a scope is a payload
filter inside Qdrant, so `top_k` stays full of in-scope chunks."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import openai
import pytest
from openai import OpenAI

from tests.conftest import FIXTURES, Integrations, ingest, xquad_article
from tests.test_mcp import run as run_mcp
from tests.test_mcp import text as mcp_text
from tests.test_upload_jobs import long_text

BAIKAL_RU = (FIXTURES / "baikal_ru.pdf").read_bytes()
PHOTO_EN = (FIXTURES / "photosynthesis_en.docx").read_bytes()


def _notes(http, space: str, topic: str, count: int) -> list[str]:
    """`count` short notes about `topic`: documents of one chunk each."""
    ids = []
    for i in range(count):
        text = f"Заметка {i}: {topic}. Запись номер {i} сделана в {2000 + i} году."
        ids.append(ingest(http, space, f"{topic[:12]}_{i}.txt", text.encode()).json()["doc_id"])
    return ids


def test_a_search_scoped_to_documents_fills_top_k_from_them_alone(http, space):
    weather = _notes(http, space, "погода в Казани и дожди", 4)
    trains = _notes(http, space, "расписание поездов до Москвы", 4)
    q = {"q": "какая погода и дожди в Казани", "space_id": space, "top_k": 3}
    unscoped = http.post("/search", json=q).json()["sources"]
    assert {s["doc_id"] for s in unscoped} <= set(weather), "without a scope the weather notes win"
    scoped = http.post("/search", json={**q, "doc_ids": trains}).json()["sources"]
    assert len(scoped) == 3, "top_k stays full: the filter runs inside Qdrant, not on the hits"
    assert {s["doc_id"] for s in scoped} <= set(trains)


def test_tags_set_by_patch_scope_a_search_at_once_in_any_case(http, space):
    ru = ingest(http, space, "baikal_ru.pdf", BAIKAL_RU).json()["doc_id"]
    en = ingest(http, space, "ph.docx", PHOTO_EN).json()["doc_id"]
    r = http.patch(f"/documents/{en}", params={"space_id": space}, json={"tags": ["Биология", "science", "Science"]})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["Биология", "science"], "trimmed, one per case-folded form, order kept"
    q = {"q": "Какая река вытекает из Байкала?", "space_id": space, "top_k": 5}
    assert http.post("/search", json=q).json()["sources"][0]["doc_id"] == ru
    scoped = http.post("/search", json={**q, "tags": ["БИОЛОГИЯ"]}).json()["sources"]
    assert scoped and {s["doc_id"] for s in scoped} == {en}
    http.patch(f"/documents/{en}", params={"space_id": space}, json={"tags": []})
    assert http.post("/search", json={**q, "tags": ["биология"]}).json()["sources"] == [], "cleared tags scope nothing"


def test_languages_and_upload_time_scope_a_search(http, space):
    ru = ingest(http, space, "baikal_ru.pdf", BAIKAL_RU).json()["doc_id"]
    en = ingest(http, space, "ph.docx", PHOTO_EN).json()["doc_id"]
    q = {"q": "вода, свет и энергия", "space_id": space, "top_k": 10}
    assert {s["doc_id"] for s in http.post("/search", json={**q, "languages": ["en"]}).json()["sources"]} == {en}
    assert {s["doc_id"] for s in http.post("/search", json={**q, "languages": ["ru"]}).json()["sources"]} == {ru}
    later = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    earlier = datetime.fromtimestamp(time.time() - 3600, UTC).isoformat()
    assert http.post("/search", json={**q, "uploaded_after": later}).json()["sources"] == []
    assert (
        len({s["doc_id"] for s in http.post("/search", json={**q, "uploaded_after": earlier}).json()["sources"]}) == 2
    )
    assert http.post("/search", json={**q, "uploaded_before": earlier}).json()["sources"] == []


def test_a_scope_that_leaves_the_answer_out_gets_the_honest_decline(http, space):
    ru = ingest(http, space, "baikal_ru.pdf", BAIKAL_RU).json()["doc_id"]
    en = ingest(http, space, "ph.docx", PHOTO_EN).json()["doc_id"]
    q = {"q": "Какая река вытекает из Байкала?", "space_id": space}
    inside = http.post("/ask", json={**q, "doc_ids": [ru]}).json()
    assert inside["grounded"] and {s["doc_id"] for s in inside["sources"]} == {ru}
    assert "Ангар" in " ".join(c["quote"] for c in inside["citations"]), "the scoped document's evidence is quoted"
    outside = http.post("/ask", json={**q, "doc_ids": [en]}).json()
    assert outside["grounded"] is False and "Ангар" not in outside["answer"]
    assert {s["doc_id"] for s in outside["sources"]} <= {en}


def test_bad_scopes_are_422_and_change_nothing(http, space):
    doc = ingest(http, space, "n.txt", "Заметка о погоде.".encode()).json()["doc_id"]
    cases = [
        {"doc_ids": [f"d{i}" for i in range(1001)]},
        {"tags": ["ok", "bad\x07tag"]},
        {"tags": [""]},
        {"languages": ["russian language"]},
        {"uploaded_after": "2026-02-01T00:00:00Z", "uploaded_before": "2026-01-01T00:00:00Z"},
        {"doc_ids": "not-a-list"},
    ]
    for extra in cases:
        r = http.post("/search", json={"q": "погода", "space_id": space, **extra})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", (extra, r.text)
    for body in ({"tags": ["a\nb"]}, {"tags": [f"t{i}" for i in range(10_000)]}, {"tags": ["x" * 65]}, {}):
        r = http.patch(f"/documents/{doc}", params={"space_id": space}, json=body)
        assert r.status_code == 422, (str(body)[:60], r.text)
    assert http.get(f"/documents/{doc}", params={"space_id": space}).json()["tags"] == []


def test_patch_on_another_spaces_document_is_404_and_changes_nothing(http, space):
    doc = ingest(http, space, "n.txt", "Заметка о погоде.".encode()).json()["doc_id"]
    r = http.patch(f"/documents/{doc}", params={"space_id": "someone_else"}, json={"tags": ["x"], "title": "y"})
    assert r.status_code == 404
    mine = http.get(f"/documents/{doc}", params={"space_id": space}).json()
    assert mine["tags"] == [] and mine["title"] is None


def test_the_document_list_filters_searches_sorts_and_pages(http, space):
    ids = {}
    for name, text in [
        ("отчёт_2025.txt", xquad_article("ru", 1)),
        ("report.txt", xquad_article("en", 2)),
        ("план.txt", xquad_article("ru", 3)),
    ]:
        ids[name] = ingest(http, space, name, text.encode()).json()["doc_id"]
    http.patch(f"/documents/{ids['report.txt']}", params={"space_id": space}, json={"title": "Годовой ОТЧЁТ"})
    http.patch(f"/documents/{ids['план.txt']}", params={"space_id": space}, json={"tags": ["Finance"]})

    def listed(**params) -> dict:
        r = http.get("/documents", params={"space_id": space, **params})
        assert r.status_code == 200, r.text
        return r.json()

    everything = listed()
    assert everything["total"] == 3 and everything["documents"][0]["filename"] == "отчёт_2025.txt"
    found = listed(q="отчёт")  # the filename of one, the title of another, in another case
    assert {d["doc_id"] for d in found["documents"]} == {ids["отчёт_2025.txt"], ids["report.txt"]}
    assert [d["doc_id"] for d in listed(tag="finance")["documents"]] == [ids["план.txt"]]
    assert listed(tag="finance")["documents"][0]["tags"] == ["Finance"]
    assert {d["language"] for d in listed(language="en")["documents"]} == {"en"}
    first, second = listed(sort="filename", order="desc", limit=2), listed(sort="filename", order="desc", offset=2)
    names = [d["filename"] for d in first["documents"] + second["documents"]]
    assert names == sorted(names, reverse=True) and len(names) == 3 and first["total"] == 3
    assert http.get("/documents", params={"space_id": space, "limit": 0}).status_code == 422
    assert http.get("/documents", params={"space_id": space, "sort": "secret"}).status_code == 422
    assert http.get("/documents", params={"space_id": space, "offset": 10**22}).status_code == 422, "not a 500"


def test_a_conversation_keeps_its_scope_and_a_question_may_give_its_own(http, space):
    ru = ingest(http, space, "baikal_ru.pdf", BAIKAL_RU).json()["doc_id"]
    en = ingest(http, space, "ph.docx", PHOTO_EN).json()["doc_id"]
    conv = http.post("/conversations", json={"space_id": space, "doc_ids": [en]}).json()
    assert conv["scope"] == {"doc_ids": [en]}
    cid = conv["conversation_id"]
    first = http.post(
        f"/conversations/{cid}/messages", json={"q": "Какая река вытекает из Байкала?", "space_id": space}
    )
    assert {s["doc_id"] for s in first.json()["sources"]} <= {en}
    own = http.post(
        f"/conversations/{cid}/messages",
        json={"q": "Какая река вытекает из Байкала?", "space_id": space, "doc_ids": [ru]},
    ).json()
    assert {s["doc_id"] for s in own["sources"]} == {ru}
    assert http.get(f"/conversations/{cid}", params={"space_id": space}).json()["scope"] == {"doc_ids": [en]}


def test_v1_and_mcp_take_a_scope(integrations: Integrations):
    """`/v1` through the official OpenAI client's `extra_body`, MCP through the official `mcp`
    client's tool arguments: both read only the documents the scope keeps."""
    it, space = integrations, "scoped_clients"
    with it.service.client(**it.admin) as http:
        ru = ingest(http, space, "baikal_ru.pdf", BAIKAL_RU).json()["doc_id"]
        en = ingest(http, space, "ph.docx", PHOTO_EN).json()["doc_id"]
    v1 = OpenAI(base_url=f"{it.service.url}/v1", api_key=it.admin_key, timeout=300, max_retries=0)
    question = [{"role": "user", "content": "Какая река вытекает из Байкала?"}]
    done = v1.chat.completions.create(
        model=f"space:{space}", messages=question, extra_body={"scope": {"doc_ids": [en]}}
    )
    assert {s["doc_id"] for s in done.model_extra["sources"]} == {en}
    whole = v1.chat.completions.create(model=f"space:{space}", messages=question)
    assert whole.model_extra["sources"][0]["doc_id"] == ru
    with it.service.client(**it.admin) as http:  # a client that sends no body fields names a scoped model
        assert http.patch(f"/documents/{en}", params={"space_id": space}, json={"tags": ["фото/2026"]}).is_success
    tagged = v1.chat.completions.create(model=f"space:{space}/tag:ФОТО%2F2026", messages=question)
    assert {s["doc_id"] for s in tagged.model_extra["sources"]} == {
        en
    } and tagged.model == f"space:{space}/tag:ФОТО%2F2026"
    one = v1.chat.completions.create(model=f"space:{space}/doc:{ru}", messages=question)
    assert {s["doc_id"] for s in one.model_extra["sources"]} == {ru}
    with pytest.raises(openai.NotFoundError):
        v1.chat.completions.create(model=f"space:{space}/colour:red", messages=question)
    with pytest.raises(openai.APIStatusError) as refused:
        v1.chat.completions.create(model=f"space:{space}", messages=question, extra_body={"scope": {"tags": ["\x00"]}})
    assert refused.value.status_code in (400, 422)
    found, scoped = run_mcp(
        it,
        it.admin,
        ("search", {"space_id": space, "q": "Какая река вытекает из Байкала?", "top_k": 3}),
        ("search", {"space_id": space, "q": "Какая река вытекает из Байкала?", "top_k": 3, "doc_ids": [en]}),
    )
    assert f"doc_id {ru}" in mcp_text(found)
    assert f"doc_id {en}" in mcp_text(scoped) and f"doc_id {ru}" not in mcp_text(scoped)


@pytest.mark.slow
def test_a_document_still_being_read_is_409_not_ready_with_its_upload_job(http, space):
    """An upload answered 202 gives a `doc_id`: asking about it before it is read is "not ready,
    ask again", with the upload's job and Retry-After — not "no such document"."""
    r = http.post("/ingest", files={"file": ("long.txt", long_text("nr"))}, data={"space_id": space}, timeout=60)
    assert r.status_code == 202, r.text
    job, doc = r.json()["job_id"], r.json()["doc_id"]
    asked = [
        http.post("/summarize", json={"doc_id": doc, "space_id": space}),
        http.get(f"/documents/{doc}/text", params={"space_id": space}),
        http.post("/ask", json={"q": "Who keeps the lighthouse?", "space_id": space, "doc_ids": [doc]}),
        http.post("/ask-stream", json={"q": "Who keeps the lighthouse?", "space_id": space, "doc_ids": [doc]}),
        http.post("/search", json={"q": "lighthouse keeper", "space_id": space, "doc_ids": [doc]}),
    ]
    for answer in asked:
        assert answer.status_code == 409, (answer.request.url, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "not_ready" and error["details"]["job_id"] == job
        assert int(answer.headers["Retry-After"]) >= 1
    deadline = time.monotonic() + 240
    while http.get(f"/jobs/{job}").json()["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert http.get(f"/documents/{doc}/text", params={"space_id": space}).status_code == 200
    found = http.post("/search", json={"q": "lighthouse keeper Vardø", "space_id": space, "doc_ids": [doc]}).json()
    assert "Ingrid Solberg" in " ".join(s["text"] for s in found["sources"])
    assert http.post("/summarize", json={"doc_id": "nothing-here", "space_id": space}).status_code == 404
