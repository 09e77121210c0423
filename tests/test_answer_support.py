"""An answer's words agree with its quote: each sentence is checked against the passages before it
is sent, an answer left with nothing borne out is the quote itself, each sentence names the
citation it rests on (`support`), and a follow-up is answered as it was asked.

Real parts: the embedded llama.cpp model, Qdrant Edge, the e5 embeddings, over HTTP."""

from __future__ import annotations

import re

from docassist.evals.answer_styles import style
from docassist.pipelines.answers.support import SentenceStream, other_script, unstated
from tests.conftest import ingest, sse_events

REPORT_RU = (
    "Отчёт городской библиотеки за 2023 год.\n\n"
    "В 2023 году библиотеку посетили 48 тысяч читателей, на 12 процентов больше, чем годом раньше. "
    "Фонд пополнился на 3 200 книг, из них 700 — детская литература.\n\n"
    "Читальный зал был закрыт с марта по май, потому что протекала крыша и ремонт кровли занял три месяца. "
    "На время ремонта читателей принимал абонемент на первом этаже.\n\n"
    "Курсы компьютерной грамотности для пенсионеров окончили 312 человек. "
    "Занятия вела волонтёр Анна Петровна Соколова по вторникам и четвергам."
)


def test_a_sentence_stating_a_number_or_name_the_passages_lack_is_caught():
    evidence = "Читальный зал был закрыт, потому что протекала крыша. Его открыли в Москве 48 000 раз."
    assert unstated("Зал закрыли из-за 12 тысяч читателей.", evidence) == ["12"]
    assert unstated("Зал открывали 48,000 раз.", evidence) == [], "numbers match whatever their separators"
    assert unstated("Зал открыли в Москва-Сити.", evidence) == [], "a name's inflected form is the same name"
    assert unstated("Зал закрыл Иван Петров.", evidence) == ["Иван", "Петров"]
    assert unstated("Крыша протекала.", evidence) == [], "the first word's capital is not a name"


def test_a_sentence_in_another_script_than_the_questions_is_caught():
    assert other_script("The reading room was closed because the roof leaked.", "ru")
    assert not other_script("Зал закрыли, потому что протекала крыша (roof).", "ru")
    assert other_script("Читальный зал закрыли из-за протечки крыши.", "en")
    assert not other_script("OK 2023", "ru"), "too few letters to tell"


def test_streamed_text_is_cut_into_sentences_only_once_the_next_begins():
    stream = SentenceStream()
    assert stream.feed("Первое предложение здесь. Втор") == ["Первое предложение здесь. "]
    assert stream.feed("ое предложение тоже. ") == [], "the next capital has not come yet"
    assert stream.feed("Да. Третье предложение. ") == ["Второе предложение тоже. "]
    assert stream.feed("Конец") == ["Да. Третье предложение. "], "a piece shorter than a sentence waits"
    assert stream.rest() == "Конец"


def _numbers(text: str) -> set[str]:
    """The numbers of `text`, a thousands' space joined ("48 000" is one number, "2021 2022" two)."""
    return {re.sub(r"\D", "", m) for m in re.findall(r"\d{1,3}(?:[ \u00a0]\d{3})+(?!\d)|\d+", text)}


def test_the_embedded_model_answers_with_the_passage_that_answers_and_says_so(http, space):
    ingest(http, space, "report.txt", REPORT_RU.encode())
    body = http.post("/ask", json={"q": "Почему закрывали читальный зал?", "space_id": space, "top_k": 3}).json()
    assert body["grounded"] is True
    assert "крыша" in body["answer"] and "48" not in body["answer"], body["answer"]
    assert body["answer"].startswith("В документе сказано: «"), "the quote is introduced in the question's language"
    assert body["support"] and body["support"][0]["citation"] == 0
    assert body["citations"][0]["quote"].split()[0] in body["answer"]
    assert body["usage"]["llm_calls"] == 0, "the embedded model is set to answer=extractive: no call"


def test_a_generated_answer_sends_only_sentences_its_passages_bear_out(http, service, space):
    ingest(http, space, "report.txt", REPORT_RU.encode())
    with style(service.assistant, answer="generative", verify="match"):
        r = http.post("/ask-stream", json={"q": "Почему закрывали читальный зал?", "space_id": space, "top_k": 3})
    events = sse_events(r.text)
    streamed = ""
    for name, data in events:
        if name == "answer":
            streamed = data["delta"] if data["reset"] else streamed + data["delta"]
    done = next(data for name, data in events if name == "complete")
    assert streamed.strip() == done["answer"].strip(), "what was streamed is the answer: nothing sent was dropped"
    assert done["usage"]["llm_calls"] >= 1
    assert _numbers(done["answer"]) <= _numbers(REPORT_RU + " 2023"), f"a number the report lacks: {done['answer']}"
    assert done["support"], "every answer says what it rests on"
    for sentence in done["support"]:
        assert sentence["citation"] is not None and sentence["citation"] < len(done["citations"])
        assert done["citations"][sentence["citation"]]["quote"] in REPORT_RU
    dropped = service.log().count("[ANSWER CHECK] Sentence dropped")
    assert dropped or "В документе сказано" not in done["answer"], "a quote replaces only what was dropped"


def test_a_follow_up_is_answered_as_asked_not_as_the_question_before_it(http, space):
    ingest(http, space, "report.txt", REPORT_RU.encode())
    first = "Сколько читателей посетили библиотеку в 2023 году?"
    answer1 = http.post("/ask", json={"q": first, "space_id": space, "top_k": 3}).json()["answer"]
    r = http.post(
        "/v1/chat/completions",
        json={
            "model": f"space:{space}",
            "messages": [
                {"role": "user", "content": first},
                {"role": "assistant", "content": answer1},
                {"role": "user", "content": "А сколько человек окончили курсы компьютерной грамотности?"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    answer = body["choices"][0]["message"]["content"].split("\n\nSources:")[0]
    assert "312" in answer and "48" not in answer, answer
    assert body["support"] and body["citations"][body["support"][0]["citation"]]["quote"] in REPORT_RU


def test_a_passage_of_numbers_only_is_quoted_whole_or_the_question_declined(http, space):
    table = "Показатели библиотеки по годам.\n\n2021 2022 2023\n\n41 000 45 500 48 000\n\n1 200 2 900 3 200\n"
    ingest(http, space, "table.txt", table.encode())
    r = http.post("/ask", json={"q": "Сколько читателей было в 2022 году?", "space_id": space, "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"].strip()
    if body["grounded"]:  # the quote is the table's own numbers, every one of them
        quote = body["citations"][body["support"][0]["citation"]]["quote"]
        assert _numbers(quote) <= _numbers(table) and _numbers(quote) <= _numbers(body["answer"])
    else:
        assert body["answer"].startswith("В документах пространства"), body["answer"]
