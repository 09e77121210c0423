"""Summary metrics that work for Russian as well as English, offline.

- ROUGE-1/2/L (Google's `rouge-score`) with a tokenizer of our own: the package's default
  tokenizer deletes every non-Latin character, which scores any two Russian texts 0. Ours
  lower-cases, keeps Cyrillic and Latin words and numbers, and applies the Snowball stemmer of
  each word's alphabet. With several references the best match counts (`score_multi`).
- Embedding similarity: cosine between multilingual-e5 embeddings of the summary and each
  reference (best reference), a model-based metric that needs no network.
- Faithfulness: each summary sentence is "supported" when it is close to some sentence of the
  document (e5 cosine) and most of its content words occur in the document; the score is the
  share of supported sentences, and the unsupported ones are returned for inspection. Sentences
  come from NLTK's Punkt models for Russian and English (the copies llama-index-core ships, so
  it works offline), which split lower-cased text and know abbreviations such as "т.е." and "Mr.".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache

import llama_index.core
import nltk
import numpy as np
from rouge_score import rouge_scorer, tokenizers

from docassist.pipelines.language import detect_language
from docassist.pipelines.search.sparse import stem, terms

_WORD = re.compile(r"(?u)\b\w+\b")
_PUNKT = {"ru": "russian", "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian"}
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class StemmingTokenizer(tokenizers.Tokenizer):
    """Lower-cased words of any alphabet, Snowball-stemmed per alphabet."""

    def tokenize(self, text: str) -> list[str]:
        return [stem(w) for w in _WORD.findall(text.lower())]


_SCORER = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=StemmingTokenizer())


def rouge(candidate: str, references: list[str]) -> dict[str, float]:
    """ROUGE F1 against the best-matching reference."""
    refs = [r for r in references if r.strip()]
    if not refs or not candidate.strip():
        return dict.fromkeys(ROUGE_TYPES, 0.0)
    scores = _SCORER.score_multi(refs, candidate)
    return {k: round(scores[k].fmeasure, 4) for k in ROUGE_TYPES}


@cache
def _punkt_data() -> None:
    nltk.data.path.insert(0, os.path.join(os.path.dirname(llama_index.core.__file__), "_static", "nltk_cache"))


def sentences(text: str, language: str | None = None) -> list[str]:
    """The text's sentences by NLTK Punkt for its language (detected when not given)."""
    _punkt_data()
    model = _PUNKT.get(language or detect_language(text).code, "english")
    return [s.strip() for s in nltk.sent_tokenize(text.replace("\n", " "), language=model) if len(s.strip()) > 2]


def _unit(vectors: list[list[float]]) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)


def embedding_similarity(candidate: str, references: list[str], embed, ref_vectors: np.ndarray | None = None) -> float:
    """Best cosine between the summary and a reference (e5 `passage:` embeddings).

    `ref_vectors` (from `unit_embeddings(references)`) saves re-embedding the same references
    for every summary of one document."""
    refs = ref_vectors if ref_vectors is not None else unit_embeddings(references, embed)
    vec = unit_embeddings([candidate], embed)[0]
    return round(float(np.max(refs @ vec)), 4)


def unit_embeddings(texts: list[str], embed) -> np.ndarray:
    return _unit(embed.get_text_embedding_batch(texts))


@dataclass
class Faithfulness:
    score: float  # share of summary sentences the document supports
    unsupported: list[str]


def faithfulness(
    summary: str,
    document: str,
    embed,
    min_cosine: float = 0.86,
    min_overlap: float = 0.6,
    doc_vectors: np.ndarray | None = None,
    language: str | None = None,
) -> Faithfulness:
    summary_sents = sentences(summary, language)
    if not summary_sents:
        return Faithfulness(0.0, [])
    doc_sents = sentences(document, language) or [document]
    doc_vecs = doc_vectors if doc_vectors is not None else _unit(embed.get_text_embedding_batch(doc_sents))
    sum_vecs = _unit(embed.get_text_embedding_batch(summary_sents))
    doc_terms = set(terms(document))
    unsupported = []
    for sentence, vec in zip(summary_sents, sum_vecs, strict=True):
        words = terms(sentence)
        overlap = sum(w in doc_terms for w in words) / len(words) if words else 1.0
        if float(np.max(doc_vecs @ vec)) < min_cosine or overlap < min_overlap:
            unsupported.append(sentence)
    return Faithfulness(round(1 - len(unsupported) / len(summary_sents), 4), unsupported)


def score_systems(row: dict, embed) -> dict[str, dict[str, float]]:
    """Every SummEval system summary of one article scored with all our metrics: {system: {metric: value}}.
    The article's sentences and references are embedded once for its 16 summaries."""
    doc_vecs = unit_embeddings(sentences(row["text"], "en") or [row["text"]], embed)
    ref_vecs = unit_embeddings(row["reference_summaries"], embed)
    scores = {}
    for system, entry in row["system_summaries"].items():
        summary = entry["summary"]
        scores[system] = {
            **rouge(summary, row["reference_summaries"]),
            "e5_similarity": embedding_similarity(summary, [], embed, ref_vectors=ref_vecs),
            "faithfulness": faithfulness(summary, row["text"], embed, doc_vectors=doc_vecs, language="en").score,
        }
    return scores
