"""`POST /ask`: retrieval, auto/summarize/direct, the answer in the language of the question."""

from __future__ import annotations

import json

from docassist.pipelines.language import detect_language
from tests.conftest import FIXTURES, ingest, sse_events, xquad_article


def ask(http, space, q, mode="auto", top_k=5):
    return http.post("/ask", json={"q": q, "space_id": space, "mode": mode, "top_k": top_k})


def test_auto_answers_from_the_chunks_when_the_context_is_small(shttp, space):
    ingest(shttp, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes())
    r = ask(shttp, space, "Какая река вытекает из Байкала?", top_k=1)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "auto" and body["summarized"] is False
    assert body["language"] == "ru" and detect_language(body["answer"]).code == "ru", body["answer"]
    assert body["context_tokens"] > 0 and len(body["sources"]) == 1
    assert body["sources"][0]["filename"] == "baikal_ru.pdf" and body["sources"][0]["location"] == {"page": 1}
    assert {"retrieval_s", "answer_s", "total_s"} <= set(body["timing"])
    # the embedded model answers with the passage that answers, quoted: no LLM call (answer=extractive)
    assert body["usage"]["llm_calls"] == 0 and body["answer"].startswith("В документе сказано: «")


def test_auto_summarizes_first_when_the_context_is_too_big(shttp, space, small_service):
    ingest(shttp, space, "cten.txt", xquad_article("ru", 6).encode())
    body = ask(shttp, space, "Расскажи подробно обо всем", top_k=30).json()
    assert body["summarized"] is True and body["context_tokens"] > 400
    assert body["usage"]["llm_calls"] >= 2
    log = small_service.log()
    assert "[RAG CONTEXT]" in log and "[RAG] Mode: auto → summarize context first" in log


def test_summarize_mode_always_summarizes_and_direct_never(shttp, space):
    ingest(shttp, space, "ph.docx", (FIXTURES / "photosynthesis_en.docx").read_bytes())
    forced = ask(shttp, space, "What does photosynthesis produce?", mode="summarize", top_k=2).json()
    assert forced["summarized"] is True and forced["mode"] == "summarize"
    direct = ask(shttp, space, "What does photosynthesis produce?", mode="direct", top_k=2).json()
    assert direct["summarized"] is False and direct["mode"] == "direct"
    assert forced["language"] == direct["language"] == "en"
    assert detect_language(direct["answer"]).code == "en", direct["answer"]


def test_direct_mode_cuts_the_context_to_the_budget(shttp, space):
    ingest(shttp, space, "cten.txt", xquad_article("en", 6).encode())
    retrieved = shttp.post("/search", json={"q": "What are ctenophores?", "space_id": space, "top_k": 30}).json()
    body = ask(shttp, space, "What are ctenophores?", mode="direct", top_k=30).json()
    assert body["summarized"] is False
    # the 1,024-token window leaves at most 1024 - 512 (output) - 64 (margin) for the context and its prompt
    assert 0 < body["context_tokens"] <= 448, "what the answer was given fits its budget"
    assert 1 <= len(body["sources"]) < len(retrieved["sources"]), "the least relevant chunks were left out"
    kept = [s["chunk"] for s in body["sources"]]
    assert kept == [s["chunk"] for s in retrieved["sources"][: len(kept)]], "the best chunks are the ones kept"


def test_ask_bad_input_is_422(http, space):
    for payload in (
        {"q": "", "space_id": space},
        {"q": "   ", "space_id": space},
        {"q": "x", "space_id": space, "mode": "magic"},
        {"q": "x", "space_id": space, "top_k": 0},
        {"q": "x", "space_id": "no spaces"},
    ):
        r = http.post("/ask", json=payload)
        assert r.status_code == 422, payload
        assert r.json()["error"]["code"] == "invalid_input"


def test_curl_without_a_json_content_type_works(http, space):
    """A user running `curl -X POST /ask -d '{"q":...,"mode":"summarize"}'` with no
    JSON header: curl then says form-urlencoded. The JSON body must still be read."""
    ingest(http, space, "k.txt", "Казань — столица Татарстана.".encode())
    body = json.dumps({"q": "Дай краткий обзор", "mode": "summarize", "space_id": space, "top_k": 1}).encode()
    r = http.post("/ask", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert r.json()["summarized"] is True and r.json()["mode"] == "summarize"
    bad = http.post("/ask", content=b"q=hello", headers={"content-type": "application/x-www-form-urlencoded"})
    assert bad.status_code == 422 and "malformed JSON" in bad.json()["error"]["message"]


def test_an_empty_space_gets_a_clear_answer_without_an_llm_call(http, space):
    body = ask(http, space, "Дай краткий обзор", mode="summarize").json()
    assert body["summarized"] is False and body["sources"] == [] and body["context_tokens"] == 0
    assert space in body["answer"] and body["language"] == "ru" and body["usage"]["llm_calls"] == 0


def test_ask_stream_sends_sources_before_the_answer_as_it_is_written(shttp, space):
    ingest(shttp, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes())
    r = shttp.post("/ask-stream", json={"q": "Какая река вытекает из Байкала?", "space_id": space, "top_k": 2})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [n for n, _ in events]
    assert names[0] == "sources" and names[-1] == "complete" and "answer" in names
    assert events[0][1]["sources"][0]["filename"] == "baikal_ru.pdf" and events[0][1]["language"] == "ru"
    assert events[0][1]["sources"][0]["location"] == {"page": 1}
    written = "".join(d["delta"] for n, d in events if n == "answer")
    complete = events[-1][1]
    assert complete["answer"] == written.strip() and complete["sources"] == events[0][1]["sources"]
    assert detect_language(complete["answer"]).code == "ru"
    assert shttp.post("/ask-stream", json={"q": "", "space_id": space}).status_code == 422


def test_an_answer_cites_the_sentence_it_rests_on_with_its_place_in_the_document(shttp, space):
    doc = ingest(shttp, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes()).json()
    body = ask(shttp, space, "Какая река вытекает из Байкала?", top_k=2).json()
    assert body["grounded"] is True and body["citations"], body
    first = body["citations"][0]
    assert "Ангара" in first["quote"] and first["doc_id"] == doc["doc_id"] and first["filename"] == "baikal_ru.pdf"
    text = shttp.get(f"/documents/{doc['doc_id']}/text", params={"space_id": space}).text
    assert text[first["start"] : first["end"]] == first["quote"]  # the offsets point at the quoted sentence


def test_a_question_the_documents_do_not_answer_is_declined_in_its_language_without_an_llm_call(shttp, space):
    ingest(shttp, space, "baikal_ru.pdf", (FIXTURES / "baikal_ru.pdf").read_bytes())
    body = ask(shttp, space, "Who won the football World Cup in 2018?").json()
    assert body["grounded"] is False and body["citations"] == [], body
    assert body["language"] == "en" and "do not answer this question" in body["answer"] and space in body["answer"]
    assert body["usage"]["llm_calls"] == 0 and body["sources"], "what was looked at is still shown"
    question = {"q": "Кто выиграл чемпионат мира по футболу 2018?", "space_id": space}
    streamed = sse_events(shttp.post("/ask-stream", json=question).text)
    names = [n for n, _ in streamed]
    assert "citation" not in names and streamed[-1][1]["grounded"] is False
    assert "нет ответа на этот вопрос" in streamed[-1][1]["answer"]
