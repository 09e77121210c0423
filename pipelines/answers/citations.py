"""The sentences an answer rests on, and whether the sources hold an answer at all.

The embedded 270M model cannot be trusted to write citation markers, so the supporting
sentences are chosen outside it: every sentence of the retrieved chunks is embedded (passage
side of e5) and compared with the question (query side). The best similarity says whether the
space holds an answer: under `SUPPORT_MIN` the question is declined before any LLM call. After
the answer is written, the best one or two of the sentences it was given — by that similarity
plus the share of the question's words they contain — are its citations, with their offsets
into the document's text. They are ranked by the question, not by the answer: the small model's
answer is wrong often enough (the depth of Baikal, asked which river leaves it) that ranking by
it pulls the citation off the evidence — so a reader sees the sentence that does answer.

`SUPPORT_MIN` and `TERM_WEIGHT` were chosen on the XQuAD dev split (150 questions per
language; a space holding the question's article, against one holding every other article): at
0.83 the best sentence clears it for 0.96 (en) / 0.97 (ru) of answerable questions and stays
under it for 0.96 / 0.88 of unanswerable ones. With the question's words weighing 0.1, the best
sentence by the question alone holds the gold answer 0.80 (en) / 0.81 (ru) of the time (0.77 /
0.76 by embeddings alone); with the right answer added to the question it would be 0.87 in
both, but the model's answers are right about a third of the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding

from docassist.pipelines.lanes import Lane
from docassist.pipelines.search import sparse
from docassist.pipelines.search.retrieval import Source

SUPPORT_MIN = 0.83
TERM_WEIGHT = 0.1  # how much the question's words in a sentence add to its embedding similarity
SECOND_WITHIN = 0.01  # a second citation only when it supports the answer nearly as well as the first
# a sentence ends at . ! ? … before a capital (or any non-lowercase letter), or at a blank line; a
# single line break is a PDF's or a text file's wrapping, inside the sentence
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[^\s\da-zа-яё])|\n\s*\n")
_MIN_SENTENCE_CHARS = 12


@dataclass
class Citation:
    doc_id: str
    filename: str
    chunk: int
    quote: str
    start: int | None = None  # offsets of `quote` in the document's text, where it is found there
    end: int | None = None
    score: float = 0.0


@dataclass
class Sentence:
    source: Source
    text: str
    overlap: float = 0.0  # the share of the question's terms (stemmed, no stop words) it contains


@dataclass
class Evidence:
    """The sentences of the retrieved chunks, embedded, and how well the best supports the question."""

    question: str
    query: np.ndarray
    sentences: list[Sentence]
    vectors: np.ndarray
    support: float

    @property
    def answerable(self) -> bool:
        return self.support >= SUPPORT_MIN


def split_sentences(text: str) -> list[str]:
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) >= _MIN_SENTENCE_CHARS]


class Citer:
    def __init__(self, embed_model: BaseEmbedding, lane: Lane) -> None:
        self.embed_model, self.lane = embed_model, lane

    async def evidence(self, question: str, sources: list[Source]) -> Evidence:
        asked = set(sparse.terms(question))
        sentences = [
            Sentence(s, t, len(asked & set(sparse.terms(t))) / max(1, len(asked)))
            for s in sources
            for t in split_sentences(s.text)
        ]
        if not sentences:
            return Evidence(question, np.zeros(0), [], np.zeros((0, 0)), 0.0)
        texts = [s.text for s in sentences]
        vectors = np.asarray(await self.lane.run(self.embed_model.get_text_embedding_batch, texts))
        query = np.asarray(await self.lane.run(self.embed_model.get_query_embedding, question))
        return Evidence(question, query, sentences, vectors, float((vectors @ query).max()))

    async def refocus(self, evidence: Evidence, question: str) -> Evidence:
        """The same sentences weighed against another question (their vectors are kept)."""
        asked = set(sparse.terms(question))
        sentences = [
            Sentence(s.source, s.text, len(asked & set(sparse.terms(s.text))) / max(1, len(asked)))
            for s in evidence.sentences
        ]
        query = np.asarray(await self.lane.run(self.embed_model.get_query_embedding, question))
        support = float((evidence.vectors @ query).max()) if sentences else 0.0
        return Evidence(question, query, sentences, evidence.vectors, support)

    def cite(self, evidence: Evidence, used: list[Source]) -> list[Citation]:
        """The sentences of `used` sources that best answer the question: one, or two when the
        second is nearly as good."""
        given = {(u.doc_id, u.chunk) for u in used}
        keep = [i for i, s in enumerate(evidence.sentences) if (s.source.doc_id, s.source.chunk) in given]
        if not keep:
            return []
        dense = evidence.vectors[keep] @ evidence.query
        scores = dense + TERM_WEIGHT * np.array([evidence.sentences[i].overlap for i in keep])
        order = np.argsort(-scores)
        best = float(scores[order[0]])
        chosen = [order[0]] + [i for i in order[1:2] if best - float(scores[i]) <= SECOND_WITHIN]
        return [
            Citation(
                doc_id=(s := evidence.sentences[keep[i]]).source.doc_id,
                filename=s.source.filename,
                chunk=s.source.chunk,
                quote=s.text,
                score=round(float(scores[i]), 4),
            )
            for i in chosen
        ]


def place(citations: list[Citation], text_of: dict[str, str]) -> list[Citation]:
    """Fill in each quote's offsets in its document's text (`text_of`: doc_id → text)."""
    for c in citations:
        text = text_of.get(c.doc_id, "")
        at = text.find(c.quote)
        if at >= 0:
            c.start, c.end = at, at + len(c.quote)
    return citations
