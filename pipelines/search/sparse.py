"""BM25 as Qdrant sparse vectors: stemmed term weights here, IDF inside Qdrant.

Each chunk becomes a sparse vector of BM25-saturated term frequencies over Snowball stems
(Russian stems for Cyrillic words, English for the rest). Qdrant's `Modifier.IDF` supplies
the IDF at query time from the collection itself, so BM25 lives in the one store that
ingest and delete already keep consistent, and scales out with a Qdrant server. Term ids
are a stable 32-bit hash of the stem: no vocabulary to persist or rebuild.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_RUSSIAN

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_RUSSIAN)
_RU = Stemmer.Stemmer("russian")
_EN = Stemmer.Stemmer("english")
K1 = 1.5
B = 0.75
AVG_CHUNK_TERMS = 80.0  # typical stemmed-term count of a chunk; fixes BM25's length normalisation


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball stem: Russian rules for Cyrillic words (ё folded to е), English for the rest."""
    if any("\u0400" <= ch <= "\u04ff" for ch in word):
        return _RU.stemWord(word.replace("ё", "е"))
    return _EN.stemWord(word)


def terms(text: str) -> list[str]:
    """Lower-cased, stop-word-free Snowball stems of `text`."""
    return [stem(w) for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]


def term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


def encode_document(text: str) -> tuple[list[int], list[float]]:
    """BM25 term-frequency part of one chunk: tf·(k1+1) / (tf + k1·(1−b+b·len/avglen))."""
    counts = Counter(terms(text))
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / AVG_CHUNK_TERMS)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        idx = term_id(term)
        weights[idx] = weights.get(idx, 0.0) + tf * (K1 + 1) / (tf + norm)
    return list(weights), list(weights.values())


def encode_query(text: str) -> tuple[list[int], list[float]]:
    """Each distinct query stem weighs 1; Qdrant multiplies in the IDF."""
    ids = sorted({term_id(t) for t in terms(text)})
    return ids, [1.0] * len(ids)


def doc_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    """Batch form for llama-index's QdrantVectorStore(sparse_doc_fn=...)."""
    pairs = [encode_document(t) for t in texts]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def query_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
    """Batch form for llama-index's QdrantVectorStore(sparse_query_fn=...)."""
    pairs = [encode_query(t) for t in texts]
    return [p[0] for p in pairs], [p[1] for p in pairs]
