"""The reader's verdict on an answer: thumbs up or down with a comment, on a conversation's answer
or an `/ask` answer (by the `X-Request-ID` it was given in) — kept with the answer, shown when the
conversation is read again, replaced by a second verdict, counted in `/metrics`, audited, and
exported by `docassist eval feedback`. Another space's answer, a question, a person's answer rated
by anyone else is 404; a 100 KB comment and a rating that is neither up nor down are refused.

The store on both databases (no model); the rest against the session's real service over HTTP,
three answers of the embedded LLM in all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, expect

from docassist.pipelines.conversations.asked import KEEP_DAYS, AskedAnswer, AskedAnswers
from docassist.pipelines.conversations.feedback_store import FeedbackStore, Verdict
from docassist.pipelines.conversations.store import ConversationStore, Turn, new_message
from docassist.pipelines.errors import NotFound
from docassist.pipelines.storage.database import Database
from tests.conftest import ingest, service_env
from tests.inprocess import InProcessService
from tests.test_page import browser, open_page  # noqa: F401  (browser: the fixture)

SPACE, OTHER = "t_feedback", "t_feedback_other"
BAIKAL = (
    "Lake Baikal is the deepest lake on Earth, more than 1,600 metres deep. It lies in Siberia, in Russia. "
    "The Angara is the only river that flows out of Lake Baikal; hundreds of rivers flow into it."
)
QUESTION = "Which river flows out of Lake Baikal?"


# ---------------------------------------------------------------------- the store, on both databases
def _turn(store: ConversationStore, space: str, owner: str | None) -> tuple[str, str, str]:
    """A conversation with one answered question: (conversation id, question id, answer id)."""
    conv = store.create(space, owner)
    question, answer = new_message("user", "Что вытекает из Байкала?"), new_message("assistant", "Ангара.")
    store.add_turn(space, conv.conversation_id, Turn(question, answer), owner)
    return conv.conversation_id, question.message_id, answer.message_id


def _on(conversation_id: str, message_id: str, rating: str = "up", comment: str | None = None) -> Verdict:
    return Verdict(rating, comment, time.time(), "conversation", "s", message_id, conversation_id)  # type: ignore[arg-type]


def test_a_verdict_is_one_per_answer_and_rater_and_only_the_reader_of_the_answer_gives_it(db: Database):
    conversations, feedback = ConversationStore(db), FeedbackStore(db)
    cid, question_id, answer_id = _turn(conversations, "s", "alice")  # Alice's own: owner her id, rater her person
    feedback.rate(_on(cid, answer_id, "up", "точно"), "alice", "person:alice")
    feedback.rate(_on(cid, answer_id, "down"), "alice", "person:alice")
    mine = feedback.mine("s", [answer_id], "person:alice")
    assert (mine[answer_id].rating, mine[answer_id].comment) == ("down", None), "the second verdict replaced the first"
    for owner in ("bob", None):  # another person, or a key: Alice's conversation is not theirs to read
        with pytest.raises(NotFound):
            feedback.rate(_on(cid, answer_id), owner, f"person:{owner}" if owner else "key:k")
    with pytest.raises(NotFound):
        feedback.rate(_on(cid, question_id), "alice", "person:alice")  # a question is not an answer
    with pytest.raises(NotFound):  # an id no table holds, not a query PostgreSQL refuses
        feedback.rate(_on(cid + "\x00", answer_id + "x" * 64), "alice", "person:alice")
    with pytest.raises(NotFound):
        feedback.rate(Verdict("up", None, 1.0, "conversation", "t", answer_id, cid), "alice", "person:alice")
    keyed, _, keyed_answer = _turn(conversations, "s", None)
    feedback.rate(_on(keyed, keyed_answer, "up"), None, "key:a")
    feedback.rate(_on(keyed, keyed_answer, "down"), None, "key:b")
    assert feedback.mine("s", [keyed_answer], "key:a")[keyed_answer].rating == "up", "each key has its own"
    exported = [(r.question, r.answer, r.rating, r.comment, r.conversation_id) for r in feedback.export("s")]
    question, answer = "Что вытекает из Байкала?", "Ангара."
    assert exported == [
        (question, answer, "down", None, cid),
        (question, answer, "up", None, keyed),
        (question, answer, "down", None, keyed),
    ], "each verdict with the question it answered, oldest first"
    conversations.delete("s", cid, "alice")
    assert feedback.mine("s", [answer_id], "person:alice") == {}, "deleting a conversation deletes its verdicts"


def test_an_ask_answer_is_rated_by_its_request_id_and_unrated_ones_are_not_kept_for_ever(db: Database):
    feedback = FeedbackStore(db)
    asked = AskedAnswers(db)
    old = AskedAnswer("rid-1", "s", None, "Глубина?", "1642 м.", "ru", True, [], created_at=time.time() - 60)
    new = AskedAnswer("rid-1", "s", None, "Глубина Байкала?", "1 642 метра.", "ru", True, [])
    for a in (old, new, AskedAnswer("rid-2", "s", "person:alice", "Река?", "Ангара.", "ru", True, [])):
        asked.keep(a)
    kept = feedback.rate(Verdict("up", None, time.time(), "ask", "s", "", request_id="rid-1"), None, "key:a")
    assert kept.answer_id == new.answer_id, "a request id used twice: the newest answer is rated"
    for space, rid, owner in (
        ("t", "rid-1", None),
        ("s", "rid-2", None),
        ("s", "rid-2", "person:bob"),
        ("s", "\x00", None),
    ):
        with pytest.raises(NotFound):
            feedback.rate(Verdict("up", None, 1.0, "ask", space, "", request_id=rid), owner, "key:a")
    lines = list(feedback.export("s"))
    assert [(r.source, r.question, r.answer, r.rating) for r in lines] == [
        ("ask", "Глубина Байкала?", "1 642 метра.", "up")
    ]
    assert asked.prune(time.time() + KEEP_DAYS * 86400 + 1) == 2, "the rated answer stays, the two others go"
    assert [r.answer_id for r in feedback.export()] == [new.answer_id]


# ---------------------------------------------------------------------- the service, over HTTP
@dataclass
class Answered:
    conversation_id: str
    question_id: str
    answer_id: str
    ask_request_id: str  # chosen by the client
    stream_request_id: str  # given by the service


@pytest.fixture(scope="module")
def answered(http: httpx.Client) -> Answered:
    """One document in SPACE (and one in OTHER), a conversation's answer, an `/ask` answer asked
    with our own `X-Request-ID`, and an `/ask-stream` answer with the service's."""
    for space in (SPACE, OTHER):
        assert ingest(http, space, "baikal.txt", BAIKAL.encode()).status_code == 200
    cid = http.post("/conversations", json={"space_id": SPACE}).json()["conversation_id"]
    turn = http.post(f"/conversations/{cid}/messages", json={"q": QUESTION, "space_id": SPACE})
    assert turn.status_code == 200, turn.text
    asked = http.post("/ask", json={"q": QUESTION, "space_id": SPACE}, headers={"X-Request-ID": "feedback-ask-1"})
    assert asked.status_code == 200 and asked.headers["x-request-id"] == "feedback-ask-1"
    with http.stream("POST", "/ask-stream", json={"q": QUESTION, "space_id": SPACE}) as streamed:
        body = streamed.read().decode()
        assert streamed.status_code == 200 and "event: complete" in body
        stream_id = streamed.headers["x-request-id"]
    messages = http.get(f"/conversations/{cid}", params={"space_id": SPACE}).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["message_id"] == turn.json()["message_id"], "the turn names the answer it stored"
    return Answered(cid, messages[0]["message_id"], messages[1]["message_id"], "feedback-ask-1", stream_id)


def _rate(http: httpx.Client, a: Answered, message_id: str | None = None, **body: object) -> httpx.Response:
    url = f"/conversations/{a.conversation_id}/messages/{message_id or a.answer_id}/feedback"
    return http.post(url, json={"space_id": SPACE, **body})


def _counted(http: httpx.Client) -> dict[str, float]:
    text = http.get("/metrics").text
    return {
        r: float(v) for r, v in re.findall(r'^docassist_answer_feedback_total\{rating="(\w+)"\} (\S+)$', text, re.M)
    }


def _shown(http: httpx.Client, a: Answered) -> list[dict | None]:
    messages = http.get(f"/conversations/{a.conversation_id}", params={"space_id": SPACE}).json()["messages"]
    return [m["feedback"] for m in messages]


@pytest.mark.slow  # three answers of the embedded LLM
def test_a_conversation_answer_rated_up_then_down_shows_the_last_verdict_and_both_are_counted(
    http: httpx.Client, answered: Answered
):
    before = _counted(http)
    up = _rate(http, answered, rating="up", comment="  Right: the Angara.  ")
    assert up.status_code == 200, up.text
    assert up.json() | {"created_at": 0} == {
        "rating": "up",
        "comment": "Right: the Angara.",
        "created_at": 0,
        "space_id": SPACE,
        "source": "conversation",
        "conversation_id": answered.conversation_id,
        "message_id": answered.answer_id,
        "request_id": None,
    }
    question, answer = _shown(http, answered)
    assert question is None and (answer["rating"], answer["comment"]) == ("up", "Right: the Angara.")
    assert _rate(http, answered, rating="down").status_code == 200
    assert [(f or {}).get("rating") for f in _shown(http, answered)] == [None, "down"], "the new verdict replaced it"
    after = _counted(http)
    assert after["up"] == before["up"] + 1 and after["down"] == before["down"] + 1
    trail = http.get("/audit", params={"space_id": SPACE, "action": "feedback"}).json()["entries"]
    assert trail[0]["detail"] == f"down on answer {answered.answer_id}", "audited as feedback, without the comment"


@pytest.mark.slow
def test_another_spaces_answer_a_question_and_an_unknown_answer_are_404(http: httpx.Client, answered: Answered):
    url = f"/conversations/{answered.conversation_id}/messages/{answered.answer_id}/feedback"
    assert http.post(url, json={"space_id": OTHER, "rating": "up"}).status_code == 404
    assert _rate(http, answered, answered.question_id, rating="up").status_code == 404, "a question is no answer"
    assert _rate(http, answered, "f" * 32, rating="up").status_code == 404
    ask = http.post(f"/ask/{answered.ask_request_id}/feedback", json={"space_id": OTHER, "rating": "up"})
    assert ask.status_code == 404 and ask.json()["error"]["code"] == "not_found"
    assert http.post("/ask/never-asked/feedback", json={"space_id": SPACE, "rating": "up"}).status_code == 404


@pytest.mark.slow
def test_a_100_kb_comment_and_a_rating_other_than_up_or_down_are_refused_and_change_nothing(
    http: httpx.Client, answered: Answered
):
    assert _rate(http, answered, rating="up", comment="kept").status_code == 200
    huge = _rate(http, answered, rating="down", comment="x" * 100_000)
    assert huge.status_code in (413, 422) and huge.json()["error"]["code"] in ("invalid_input", "too_large")
    for bad in (
        {"rating": "meh"},
        {"rating": 1},
        {},
        {"rating": "up", "stars": 5},
        {"rating": "up", "comment": "a\x00b"},
    ):
        assert _rate(http, answered, **bad).status_code == 422, bad
    surrogate = b'{"rating": "up", "comment": "\\ud800", "space_id": "%s"}' % SPACE.encode()  # not UTF-8 text
    url = f"/conversations/{answered.conversation_id}/messages/{answered.answer_id}/feedback"
    assert http.post(url, content=surrogate, headers={"Content-Type": "application/json"}).status_code == 422
    assert (_shown(http, answered)[1] or {}).get("comment") == "kept"


@pytest.mark.slow
def test_ask_answers_are_rated_by_the_request_id_they_were_answered_with(http: httpx.Client, answered: Answered):
    r = http.post(
        f"/ask/{answered.ask_request_id}/feedback", json={"space_id": SPACE, "rating": "down", "comment": "?"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["source"], r.json()["request_id"], r.json()["message_id"]) == ("ask", "feedback-ask-1", None)
    streamed = http.post(f"/ask/{answered.stream_request_id}/feedback", json={"space_id": SPACE, "rating": "up"})
    assert streamed.status_code == 200 and streamed.json()["rating"] == "up", "an /ask-stream answer is kept too"


@pytest.mark.slow  # the `docassist` command in a process of its own
def test_docassist_eval_feedback_prints_the_rated_answers(
    service: InProcessService, http: httpx.Client, answered: Answered
):
    assert _rate(http, answered, rating="up", comment="for the export").status_code == 200
    assert http.post(f"/ask/{answered.ask_request_id}/feedback", json={"space_id": SPACE, "rating": "down"}).is_success
    done = subprocess.run(
        [sys.executable, "-m", "docassist.api.cli", "eval", "feedback", "--space", SPACE],
        env=service_env(service.data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    by_source = {
        line["source"]: line for line in lines if line["answer_id"] == answered.answer_id or line["request_id"]
    }
    said = by_source["conversation"]
    assert (said["question"], said["rating"], said["comment"], said["space_id"]) == (
        QUESTION,
        "up",
        "for the export",
        SPACE,
    )
    assert said["answer"] and isinstance(said["citations"], list) and said["created_at"] > 0
    asked = [line for line in lines if line["request_id"] == answered.ask_request_id]
    assert len(asked) == 1 and (asked[0]["question"], asked[0]["rating"]) == (QUESTION, "down") and asked[0]["answer"]
    assert all(line["space_id"] == SPACE for line in lines) and "rater" not in lines[0], "who rated is not exported"
    assert f"{len(lines)} verdicts written" in done.stderr


def test_the_page_rates_an_answer_with_thumbs_and_shows_the_choice_after_a_reload(
    browser: Browser,  # noqa: F811
    service: InProcessService,
    http: httpx.Client,
    answered: Answered,
):
    errors: list[str] = []
    page = open_page(browser, service.url, errors)
    try:
        page.get_by_label("Space", exact=True).fill(SPACE)
        page.get_by_role("button", name="Open", exact=True).click()
        ask = page.get_by_role("region", name="Ask your documents")
        turn = ask.get_by_role("list", name="Conversation", exact=True).locator(":scope > li")
        for attempt in ("first", "after a reload"):
            ask.get_by_role("button", name=f"Open the conversation “{QUESTION}”").click()
            verdict = turn.get_by_role("group", name="Was this answer useful?")
            if attempt == "first":
                verdict.get_by_label("Comment (optional)").fill("Короче, пожалуйста")
                verdict.get_by_role("button", name="Good answer").click()
                expect(verdict.get_by_role("status")).to_have_text("Thank you: marked as a good answer.")
            expect(verdict.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
            expect(verdict.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "false")
            expect(verdict.get_by_label("Comment (optional)")).to_have_value("Короче, пожалуйста")
            page.reload()
        page.get_by_label("Language", exact=True).select_option("ru")
        ask = page.get_by_role("region", name="Вопрос по документам")
        ask.get_by_role("button", name=f"Открыть беседу «{QUESTION}»").click()
        expect(page.get_by_role("button", name="Хороший ответ")).to_have_attribute("aria-pressed", "true")
    finally:
        page.context.close()
    assert not errors, f"script errors on the page: {errors}"
    shown = _shown(http, answered)[1]
    assert (shown["rating"], shown["comment"]) == ("up", "Короче, пожалуйста"), "the page stored what it shows"
