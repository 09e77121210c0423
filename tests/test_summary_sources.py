"""Every summary sentence tied to the passage of its document it rests on: `sentences` on
`/summarize`, the summary stream and the cached summary, each citation's offsets holding its quote
in the document's text and its page. Real parts: llama.cpp, Qdrant Edge, the e5 embeddings."""

from __future__ import annotations

from tests.conftest import ingest, pdf_pages, sse_events
from tests.test_answer_support import REPORT_RU


def _words(text: str) -> str:
    return " ".join(text.split())


def _summarize(http, space, doc_id, **extra):
    r = http.post("/summarize", json={"doc_id": doc_id, "space_id": space, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_each_summary_sentence_names_the_passage_it_rests_on(http, space):
    doc = ingest(http, space, "report.txt", REPORT_RU.encode()).json()
    body = _summarize(http, space, doc["doc_id"])
    text = http.get(f"/documents/{doc['doc_id']}/text", params={"space_id": space}).text
    sentences = body["sentences"]
    assert sentences, body["summary"]
    for s in sentences:
        assert s["text"] in body["summary"], "each sentence is a sentence of the summary"
    cited = [s for s in sentences if s["citations"]]
    assert cited, f"no sentence of {body['summary']!r} was tied to the report"
    for s in cited:
        c = s["citations"][0]
        assert c["doc_id"] == doc["doc_id"] and text[c["start"] : c["end"]] == c["quote"]
        assert _words(c["quote"]) in _words(REPORT_RU)
    again = _summarize(http, space, doc["doc_id"])
    assert again["cached"] is True and again["sentences"] == sentences, "kept with the cached summary"


def test_a_summary_sentence_of_a_pdf_names_its_page_and_the_stream_sends_them(http, space):
    pages = [
        "Годовой отчёт завода. Завод выпустил 1 200 тракторов за год, на треть больше плана.",
        "Второй цех закрыли на ремонт на два месяца, потому что обрушилась крыша склада. "
        "Ремонт оплатила страховая компания.",
    ]
    doc = ingest(http, space, "plant.pdf", pdf_pages(pages)).json()
    r = http.post("/summarize-stream", json={"doc_id": doc["doc_id"], "space_id": space})
    done = next(data for name, data in sse_events(r.text) if name == "complete")
    cited = [s["citations"][0] for s in done["sentences"] if s["citations"]]
    assert cited, done["summary"]
    assert all(c["location"] and c["location"]["page"] in (1, 2) for c in cited)
    assert all(_words(c["quote"]) in _words(pages[c["location"]["page"] - 1]) for c in cited), "its page holds it"
