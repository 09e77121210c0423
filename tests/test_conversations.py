"""Conversations over a space against a real keyed `docassist serve` (llama.cpp, Qdrant Edge,
real embeddings): created, listed, read and deleted; reachable only with a key for their space;
a follow-up with a pronoun condensed into a question that finds the right document, streamed
like `/ask-stream`; bad input that loses nothing; a condense call that fails (a vLLM stub
answering 500 to it) falling back to the previous question with the follow-up; and a space's
many conversations, and a conversation's many turns, read in pages."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from docassist.pipelines.conversations.store import ConversationStore, Turn, new_message
from docassist.pipelines.language import detect_language
from docassist.pipelines.storage.database import Database
from docassist.pipelines.storage.tables import conversations
from tests.conftest import Integrations, ingest, sse_events
from tests.inprocess import start_in_process
from tests.stubs.vllm_stub import VllmStub
from tests.test_vllm_ollama_stubs import StubServer

LIBRARY_RU = (
    "Городская библиотека имени Короленко открылась в 1899 году в здании бывшей гимназии. "
    "Её читальный зал был закрыт в 1941 году, когда в здании разместили госпиталь, и снова открылся в 1946 году. "
    "Сегодня в фонде библиотеки более двухсот тысяч книг."
)
HALL_RU = (
    "Областная филармония построена в 1962 году на набережной. Её концертный зал был закрыт на реконструкцию "
    "в 2015 году и открылся снова через три года. В филармонии выступает симфонический оркестр."
)
LIBRARY_EN = (
    "The Korolenko City Library opened in 1899 in the building of a former school. "
    "Its reading room was closed in 1941, when a military hospital moved into the building, and reopened in 1946. "
    "Today the library holds more than two hundred thousand books."
)
HALL_EN = (
    "The regional philharmonic hall was built in 1962 on the embankment. Its concert hall was closed for "
    "renovation in 2015 and reopened three years later. A symphony orchestra performs there."
)


@pytest.fixture(scope="module")
def admin(integrations: Integrations) -> Iterator[httpx.Client]:
    with integrations.service.client(**integrations.admin) as client:
        yield client


@pytest.fixture(scope="module")
def library(admin: httpx.Client) -> dict[str, str]:
    """A space with the library and the philharmonic, in Russian and English: doc_id by name."""
    docs = {}
    for name, text in (
        ("library_ru.txt", LIBRARY_RU),
        ("hall_ru.txt", HALL_RU),
        ("library_en.txt", LIBRARY_EN),
        ("hall_en.txt", HALL_EN),
    ):
        r = ingest(admin, "conv_library", name, text.encode())
        assert r.status_code == 200, r.text
        docs[name] = r.json()["doc_id"]
    return docs


def new_conversation(client: httpx.Client, space: str) -> str:
    r = client.post("/conversations", json={"space_id": space})
    assert r.status_code == 201, r.text
    return r.json()["conversation_id"]


def say(client: httpx.Client, space: str, cid: str, q: str, **extra) -> httpx.Response:
    return client.post(f"/conversations/{cid}/messages", json={"q": q, "space_id": space, **extra})


def test_a_conversation_is_created_listed_read_and_deleted(admin, library):
    space = "conv_library"
    created = admin.post("/conversations", json={"space_id": space})
    assert created.status_code == 201 and created.json()["space_id"] == space and created.json()["created_at"] > 0
    cid = created.json()["conversation_id"]
    first = say(admin, space, cid, "Когда открылась городская библиотека имени Короленко?", top_k=2)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["conversation_id"] == cid and body["message_id"] and body["condensed"] == "first"
    assert body["standalone_question"] == "Когда открылась городская библиотека имени Короленко?"
    assert body["sources"][0]["doc_id"] == library["library_ru.txt"] and body["usage"]["llm_calls"] == 0  # extractive
    assert body["grounded"] and "1899" in body["citations"][0]["quote"]
    listed = admin.get("/conversations", params={"space_id": space}).json()["conversations"]
    assert listed[0]["conversation_id"] == cid and listed[0]["title"].startswith("Когда открылась городская")
    read = admin.get(f"/conversations/{cid}", params={"space_id": space}).json()
    assert [m["role"] for m in read["messages"]] == ["user", "assistant"]
    question, answer = read["messages"]
    assert question["text"] == body["standalone_question"] and answer["message_id"] == body["message_id"]
    assert answer["text"] == body["answer"] and answer["citations"] == body["citations"]
    assert answer["sources"] == body["sources"] and answer["grounded"] is True
    assert admin.delete(f"/conversations/{cid}", params={"space_id": space}).status_code == 204
    assert admin.get(f"/conversations/{cid}", params={"space_id": space}).status_code == 404
    assert cid not in [
        c["conversation_id"] for c in admin.get("/conversations", params={"space_id": space}).json()["conversations"]
    ]


def test_conversations_are_listed_newest_first(admin):
    older, newer = new_conversation(admin, "conv_order"), new_conversation(admin, "conv_order")
    listed = [
        c["conversation_id"]
        for c in admin.get("/conversations", params={"space_id": "conv_order"}).json()["conversations"]
    ]
    assert listed[:2] == [newer, older]


def test_a_key_for_another_space_cannot_read_post_to_or_delete_a_conversation(integrations, admin, library):
    space = "conv_library"
    cid = new_conversation(admin, space)
    assert say(admin, space, cid, "When did the Korolenko City Library open?", top_k=2).status_code == 200
    with integrations.service.client(**integrations.team) as team:  # a key for space `team` only
        own = {"space_id": "team"}
        for r in (
            team.get(f"/conversations/{cid}", params=own),
            say(team, "team", cid, "And its reading room?"),
            team.post(f"/conversations/{cid}/messages-stream", json={"q": "And its reading room?", **own}),
            team.delete(f"/conversations/{cid}", params=own),
        ):
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
            assert "Korolenko" not in r.text
        assert cid not in team.get("/conversations", params=own).text
        theirs = team.get(f"/conversations/{cid}", params={"space_id": space})
        assert theirs.status_code == 403, "naming a space the key lacks is refused as for documents"
    read = admin.get(f"/conversations/{cid}", params={"space_id": space}).json()
    assert len(read["messages"]) == 2, "nothing of it was removed or added"


@pytest.mark.parametrize(
    ("first", "follow_up", "doc"),
    [
        (
            "Когда открылась городская библиотека имени Короленко?",
            "А когда был закрыт её читальный зал?",
            "library_ru.txt",
        ),
        ("When did the Korolenko City Library open?", "And when was its reading room closed?", "library_en.txt"),
    ],
)
def test_a_follow_up_with_a_pronoun_is_condensed_and_finds_the_right_document(admin, library, first, follow_up, doc):
    space = "conv_library"
    cid = new_conversation(admin, space)
    assert say(admin, space, cid, first, top_k=2).status_code == 200
    r = say(admin, space, cid, follow_up, top_k=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["condensed"] in ("llm", "history", "fallback") and body["standalone_question"] != follow_up
    assert body["sources"][0]["doc_id"] == library[doc], (body["standalone_question"], body["sources"])
    language = detect_language(follow_up).code
    assert body["language"] == language and detect_language(body["answer"]).code == language, body["answer"]
    assert body["grounded"] and any("1941" in c["quote"] for c in body["citations"]), body["citations"]
    stored = admin.get(f"/conversations/{cid}", params={"space_id": space}).json()["messages"]
    assert [m["text"] for m in stored if m["role"] == "user"] == [first, follow_up]
    assert stored[2]["standalone_question"] == body["standalone_question"]


def test_the_stream_sends_the_ask_events_and_the_conversation_then_holds_both_messages(admin, library):
    space = "conv_library"
    cid = new_conversation(admin, space)
    r = admin.post(
        f"/conversations/{cid}/messages-stream",
        json={"q": "Когда был закрыт читальный зал библиотеки имени Короленко?", "space_id": space, "top_k": 2},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [n for n, _ in events]
    assert names[0] == "sources" and "answer" in names and "citation" in names and names[-1] == "complete"
    complete = events[-1][1]
    written = "".join(d["delta"] for n, d in events if n == "answer")
    assert complete["answer"] == written.strip() and complete["conversation_id"] == cid
    assert complete["sources"][0]["doc_id"] == library["library_ru.txt"]
    stored = admin.get(f"/conversations/{cid}", params={"space_id": space}).json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"] and stored[1]["message_id"] == complete["message_id"]
    assert stored[1]["text"] == complete["answer"] and stored[1]["citations"][0]["quote"] in LIBRARY_RU


def test_bad_input_is_refused_and_loses_nothing(admin, library):
    space = "conv_library"
    cid = new_conversation(admin, space)
    assert say(admin, space, cid, "When did the Korolenko City Library open?", top_k=2).status_code == 200
    unknown = say(admin, space, "0" * 32, "And its reading room?")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    streamed = admin.post("/conversations/" + "0" * 32 + "/messages-stream", json={"q": "Hi?", "space_id": space})
    assert streamed.status_code == 404, "an unknown conversation is refused before any event"
    for payload in (
        {"q": "", "space_id": space},
        {"q": "x", "space_id": space, "top_k": "5"},
        {"q": "x"} | {"extra": 1},
    ):
        r = admin.post(f"/conversations/{cid}/messages", json={"space_id": space, **payload})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", payload
    elsewhere = say(admin, "conv_elsewhere", cid, "And its reading room?")
    assert elsewhere.status_code == 404, "a conversation asked for in another space does not exist there"
    assert admin.post("/conversations", json={"space_id": "no spaces"}).status_code == 422
    stored = admin.get(f"/conversations/{cid}", params={"space_id": space}).json()["messages"]
    assert [m["text"] for m in stored if m["role"] == "user"] == ["When did the Korolenko City Library open?"]


@pytest.fixture(scope="module")
def faulty_condense(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """docassist (in-process) on two vLLM stubs that answer everything but the condense prompt, which
    gets a 500 from both (so the failover partner fails it too)."""
    marker = "LAST QUESTION:"
    medium = VllmStub("openai/gpt-oss-20b", max_model_len=16384, fail_when=marker)
    small = VllmStub("mistralai/Mistral-7B-Instruct-v0.3", max_model_len=8192, fail_when=marker)
    m, s = StubServer(medium.app()), StubServer(small.app())
    svc = start_in_process(
        Path(tmp_path_factory.mktemp("faulty")),
        LLM_MODE="vllm",
        VLLM_MEDIUM_URL=f"{m.url}/v1",
        VLLM_SMALL_URL=f"{s.url}/v1",
        QDRANT_URL="",
    )
    yield svc, medium, small
    svc.stop()
    m.stop()
    s.stop()


def test_a_failed_condense_call_falls_back_to_the_previous_question_and_the_answer_still_comes(faulty_condense):
    svc, medium, small = faulty_condense
    with svc.client() as c:
        for name, text in (("library_en.txt", LIBRARY_EN), ("hall_en.txt", HALL_EN)):
            assert ingest(c, "lib", name, text.encode()).status_code == 200
        cid = new_conversation(c, "lib")
        assert say(c, "lib", cid, "When did the Korolenko City Library open?", top_k=2).status_code == 200
        r = say(c, "lib", cid, "And when was its reading room closed?", top_k=2)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["condensed"] == "fallback"
        assert (
            body["standalone_question"]
            == "When did the Korolenko City Library open? And when was its reading room closed?"
        )
        assert body["sources"][0]["filename"] == "library_en.txt" and body["answer"].strip()
        condense_calls = [q for q in medium.requests + small.requests if "LAST QUESTION:" in str(q["messages"])]
        assert condense_calls, "the condense call was made and failed"
        assert len(c.get(f"/conversations/{cid}", params={"space_id": "lib"}).json()["messages"]) == 4
    assert "[CONDENSE] Falling back to the previous question and the follow-up" in svc.log()


# ---------------------------------------------------------------------- paging
# Many turns are written through the store into the service's own database (answering hundreds of
# questions with the LLM is not what is tested); every read is the route's, over HTTP.
def service_db(integrations: Integrations) -> Database:
    return Database.for_data_dir(None, integrations.service.data_dir)


def read_all(client: httpx.Client, path: str, key: str, limit: int, **params: str) -> list[list[dict]]:
    """Every page of `path` from the first, following `next_cursor` until it is null."""
    pages, cursor = [], None
    while True:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        r = client.get(path, params=query)
        assert r.status_code == 200, r.text
        pages.append(r.json()[key])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "next_cursor never ended"


def test_conversations_are_listed_in_pages_each_once_newest_first(admin):
    space = "conv_paging"
    made = [new_conversation(admin, space) for _ in range(7)]
    pages = read_all(admin, "/conversations", "conversations", 3, space_id=space)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [c["conversation_id"] for p in pages for c in p] == made[::-1]

    first = admin.get("/conversations", params={"space_id": space, "limit": "3"}).json()
    newer = new_conversation(admin, space)  # created while the list is being read: it does not shift it
    rest = read_all(admin, "/conversations", "conversations", 3, space_id=space, cursor=first["next_cursor"])
    seen = [c["conversation_id"] for c in first["conversations"]] + [c["conversation_id"] for p in rest for c in p]
    assert seen == made[::-1] and newer not in seen
    default = admin.get("/conversations", params={"space_id": space}).json()
    assert len(default["conversations"]) == 8 and default["next_cursor"] is None  # under the default 50


def test_conversations_created_in_the_same_instant_are_each_listed_once(admin, integrations):
    space, at = "conv_same_instant", time.time()
    ids = [uuid.uuid4().hex for _ in range(5)]
    db = service_db(integrations)
    try:
        with db.begin() as conn:
            for cid in ids:
                row = {"conversation_id": cid, "space_id": space, "title": "", "created_at": at, "updated_at": at}
                conn.execute(insert(conversations).values(row))
    finally:
        db.close()
    pages = read_all(admin, "/conversations", "conversations", 2, space_id=space)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(c["conversation_id"] for p in pages for c in p) == sorted(ids)


def test_a_long_conversation_is_read_from_its_newest_turns_back_to_its_first(admin, integrations):
    space = "conv_paging"
    cid = new_conversation(admin, space)
    store_db = service_db(integrations)
    store = ConversationStore(store_db)

    def add_turns(numbers: range) -> None:
        for i in numbers:
            question, answer = new_message("user", f"Question {i}?"), new_message("assistant", f"Answer {i}.")
            store.add_turn(space, cid, Turn(question, answer))

    try:
        add_turns(range(30))
        path, params = f"/conversations/{cid}", {"space_id": space}
        opened = admin.get(path, params=params).json()  # what a chat shows first: the newest 50 messages
        assert [m["text"] for m in opened["messages"][:2]] == ["Question 5?", "Answer 5."]
        assert opened["messages"][-1]["text"] == "Answer 29." and len(opened["messages"]) == 50
        assert opened["next_cursor"] and opened["title"] == "Question 0?"

        first = admin.get(path, params={**params, "limit": "8"}).json()
        add_turns(range(30, 32))  # a turn answered while earlier ones are read does not shift them
        earlier = read_all(admin, path, "messages", 8, **params, cursor=first["next_cursor"])
        pages = [first["messages"], *earlier]
        assert [len(p) for p in pages] == [8] * 7 + [4]
        assert all(p[0]["role"] == "user" for p in pages), "an even limit keeps each question with its answer"
        in_order = [m["text"] for p in reversed(pages) for m in p]
        assert in_order == [
            f"{kind} {i}{mark}" for i in range(30) for kind, mark in (("Question", "?"), ("Answer", "."))
        ]
        assert len({m["message_id"] for p in pages for m in p}) == 60
    finally:
        store_db.close()


def _cursor(**fields) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


def test_a_cursor_the_listing_did_not_give_or_a_limit_out_of_range_is_422(admin):
    space = "conv_paging_bad"
    one, other = new_conversation(admin, space), new_conversation(admin, space)
    listed = admin.get("/conversations", params={"space_id": space, "limit": "1"}).json()
    own = admin.get(f"/conversations/{one}", params={"space_id": space, "limit": "1"}).json()
    assert listed["next_cursor"] and own["next_cursor"] is None  # an empty conversation is one page
    for path, cursor in (
        ("/conversations", "not a cursor"),
        ("/conversations", "!!!!"),
        ("/conversations", _cursor(k="conversations", t="yesterday", id=one)),
        ("/conversations", _cursor(k="messages", c=one, p=4)),
        (f"/conversations/{one}", listed["next_cursor"]),  # the list's, for messages
        (f"/conversations/{one}", _cursor(k="messages", c=other, p=4)),  # another conversation's
        (f"/conversations/{one}", _cursor(k="messages", c=one, p="4")),
        (f"/conversations/{one}", "x" * 600),
    ):
        r = admin.get(path, params={"space_id": space, "cursor": cursor})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", (path, cursor, r.text)
    for limit in ("0", "201", "ten"):
        r = admin.get("/conversations", params={"space_id": space, "limit": limit})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", (limit, r.text)
    assert admin.get(f"/conversations/{one}", params={"space_id": space, "limit": "200"}).status_code == 200
